//! Reads what diagnoses and `doctor` need from the shared AWS config and credentials files:
//! a profile's region, SSO session and start URL, credential_process, role — and the
//! expiry of the SSO token in `~/.aws/sso/cache`. Resolution itself is aws-config's job;
//! this is only for naming things, so a file that cannot be read is simply empty.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use sha1::{Digest, Sha1};

use super::env::AwsEnvironment;

/// One profile's keys, merged from the config file (`[profile P]`, `[default]`) and the
/// credentials file (`[P]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileInfo {
    pub name: String,
    /// The file that defines it, first the config file.
    pub file: Option<PathBuf>,
    pub keys: HashMap<String, String>,
    /// `[sso-session S]`'s keys, when the profile names one.
    pub sso_session: Option<(String, HashMap<String, String>)>,
}

impl ProfileInfo {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn region(&self) -> Option<&str> {
        self.get("region")
    }

    /// The SSO session's name (or the legacy start URL) and the start URL.
    pub fn sso(&self) -> Option<(String, String)> {
        if let Some((name, keys)) = &self.sso_session {
            let url = keys.get("sso_start_url").cloned().unwrap_or_default();
            return Some((name.clone(), url));
        }
        let url = self.get("sso_start_url")?;
        Some((url.to_owned(), url.to_owned()))
    }

    /// The SSO token cache file: `~/.aws/sso/cache/<sha1 of the session name or start URL>`.
    pub fn sso_cache_file(&self, env: &AwsEnvironment) -> Option<PathBuf> {
        let identifier = match &self.sso_session {
            Some((name, _)) => name.clone(),
            None => self.get("sso_start_url")?.to_owned(),
        };
        let digest = Sha1::digest(identifier.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Some(env.sso_cache_dir().join(format!("{hex}.json")))
    }
}

/// Parsed sections of the config and credentials files.
#[derive(Debug, Default)]
pub struct Profiles {
    config: Vec<(String, HashMap<String, String>)>,
    credentials: Vec<(String, HashMap<String, String>)>,
    config_file: PathBuf,
    credentials_file: PathBuf,
    config_exists: bool,
    credentials_exists: bool,
}

impl Profiles {
    pub fn load(env: &AwsEnvironment) -> Self {
        let config_file = env.config_file();
        let credentials_file = env.credentials_file();
        Self {
            config: parse(&std::fs::read_to_string(&config_file).unwrap_or_default()),
            credentials: parse(&std::fs::read_to_string(&credentials_file).unwrap_or_default()),
            config_exists: config_file.is_file(),
            credentials_exists: credentials_file.is_file(),
            config_file,
            credentials_file,
        }
    }

    /// Where profile `name` was looked for and not found, for a diagnosis: each file read,
    /// with the section it lacks or that it does not exist.
    pub fn searched(&self, name: &str) -> Vec<String> {
        let header =
            if name == "default" { "default".to_owned() } else { format!("profile {name}") };
        [
            (&self.config_file, self.config_exists, header),
            (&self.credentials_file, self.credentials_exists, name.to_owned()),
        ]
        .into_iter()
        .map(|(path, exists, section)| match exists {
            true => format!("{} (no `[{section}]` section)", path.display()),
            false => format!("{} (does not exist)", path.display()),
        })
        .collect()
    }

    /// Every profile the files define, config file first, each once.
    pub fn names(&self) -> Vec<String> {
        let from_config = self.config.iter().filter_map(|(h, _)| {
            h.strip_prefix("profile ").or_else(|| (h == "default").then_some("default"))
        });
        let from_credentials = self.credentials.iter().map(|(h, _)| h.as_str());
        let mut names: Vec<String> = Vec::new();
        for name in from_config.chain(from_credentials) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        names
    }

    /// The config file, where `[profile NAME]` sections go.
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The credentials file, where `[NAME]` sections with keys go.
    pub fn credentials_file(&self) -> &Path {
        &self.credentials_file
    }

    /// Profile `name` as the CLI sees it, or `None` when no file mentions it.
    pub fn profile(&self, name: &str) -> Option<ProfileInfo> {
        let header =
            if name == "default" { "default".to_owned() } else { format!("profile {name}") };
        let from_config = self.section(&self.config, &header).or_else(|| {
            // The CLI also accepts `[default]` written as `[profile default]`.
            (name == "default").then(|| self.section(&self.config, "profile default")).flatten()
        });
        let from_credentials = self.section(&self.credentials, name);
        if from_config.is_none() && from_credentials.is_none() {
            return None;
        }
        let mut keys = from_credentials.cloned().unwrap_or_default();
        keys.extend(from_config.cloned().unwrap_or_default());
        let file = if from_config.is_some() {
            Some(self.config_file.clone())
        } else {
            Some(self.credentials_file.clone())
        };
        let sso_session = keys.get("sso_session").and_then(|s| {
            let section = self.section(&self.config, &format!("sso-session {s}"))?;
            Some((s.clone(), section.clone()))
        });
        Some(ProfileInfo { name: name.to_owned(), file, keys, sso_session })
    }

    /// A profile to suggest in remedies: the first that uses SSO, else `default`, else the
    /// first named.
    pub fn suggestion(&self) -> Option<String> {
        let names: Vec<&str> = self
            .config
            .iter()
            .filter_map(|(h, _)| {
                h.strip_prefix("profile ").or_else(|| (h == "default").then_some("default"))
            })
            .collect();
        let sso = names.iter().find(|n| {
            self.profile(n)
                .is_some_and(|p| p.sso_session.is_some() || p.get("sso_start_url").is_some())
        });
        sso.or_else(|| names.iter().find(|n| **n == "default"))
            .or(names.first())
            .map(|n| (*n).to_owned())
    }

    fn section<'a>(
        &self,
        sections: &'a [(String, HashMap<String, String>)],
        header: &str,
    ) -> Option<&'a HashMap<String, String>> {
        sections.iter().find(|(h, _)| h == header).map(|(_, keys)| keys)
    }
}

/// The expiry (`expiresAt`) of a cached SSO token, if the file exists and says.
pub fn sso_token_expiry(path: &Path) -> Option<SystemTime> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let at = json.get("expiresAt")?.as_str()?;
    let parsed = DateTime::from_str(at, Format::DateTime)
        .or_else(|_| DateTime::from_str(at, Format::DateTimeWithOffset))
        .ok()?;
    SystemTime::try_from(parsed).ok()
}

/// INI sections in order; keys lower-cased; nested (indented) sub-properties skipped.
fn parse(text: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut sections: Vec<(String, HashMap<String, String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.push((header, HashMap::new()));
            continue;
        }
        if let (Some((key, value)), Some((_, keys))) = (line.split_once('='), sections.last_mut()) {
            keys.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    const CONFIG: &str = "\
[default]
region = us-west-2

[profile cc]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ClaudeAccess
region = us-east-1
# a comment
[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = https://ssotest.awsapps.com/start
sso_region = us-east-1
s3 =
  max_concurrent_requests = 10
";

    fn env(dir: &Path) -> AwsEnvironment {
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(dir.join(".aws/config"), CONFIG).unwrap();
        std::fs::write(dir.join(".aws/credentials"), "[static]\naws_access_key_id = AKIA\n")
            .unwrap();
        AwsEnvironment::snapshot(&MapEnv::new([("HOME", dir.to_str().unwrap())]), &[])
    }

    #[test]
    fn profiles_merge_both_files_and_resolve_their_sso_session() {
        let dir = tempfile::tempdir().unwrap();
        let env = env(dir.path());
        let profiles = Profiles::load(&env);
        let cc = profiles.profile("cc").unwrap();
        assert_eq!(cc.region(), Some("us-east-1"));
        assert_eq!(cc.sso(), Some(("corp".into(), "https://corp.awsapps.com/start".into())));
        let cache = cc.sso_cache_file(&env).unwrap();
        assert_eq!(cache.file_name().unwrap().len(), 45, "{cache:?}");
        let legacy = profiles.profile("legacy").unwrap();
        // The cache key of a legacy profile is the start URL (aws-config's own test value).
        assert!(
            legacy
                .sso_cache_file(&env)
                .unwrap()
                .ends_with("dace00cba5f8355ec9d274ceb2bcebdfbeed0e12.json")
        );
        assert_eq!(legacy.get("s3"), None, "sub-properties are not keys");
        assert_eq!(profiles.profile("default").unwrap().region(), Some("us-west-2"));
        let stat = profiles.profile("static").unwrap();
        assert_eq!(stat.file.unwrap(), dir.path().join(".aws/credentials"));
        assert!(profiles.profile("nope").is_none());
        let config = dir.path().join(".aws/config").display().to_string();
        let credentials = dir.path().join(".aws/credentials").display().to_string();
        assert_eq!(
            profiles.searched("nope"),
            [
                format!("{config} (no `[profile nope]` section)"),
                format!("{credentials} (no `[nope]` section)")
            ]
        );
        assert_eq!(profiles.names(), ["default", "cc", "legacy", "static"]);
        std::fs::remove_file(dir.path().join(".aws/credentials")).unwrap();
        let profiles = Profiles::load(&env);
        assert_eq!(profiles.searched("nope")[1], format!("{credentials} (does not exist)"));
        assert_eq!(profiles.suggestion().as_deref(), Some("cc"));
    }

    #[test]
    fn the_sso_token_expiry_is_read_from_the_cache_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.json");
        std::fs::write(&file, r#"{"accessToken":"x","expiresAt":"2030-01-02T03:04:05Z"}"#).unwrap();
        let at = sso_token_expiry(&file).unwrap();
        assert_eq!(DateTime::from(at).secs(), 1_893_553_445);
        assert_eq!(sso_token_expiry(&dir.path().join("missing.json")), None);
    }
}
