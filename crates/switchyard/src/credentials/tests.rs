//! Plans, regions and descriptions from real config files in a temporary HOME, and real
//! aws-config resolution of the sources that need no network (profile keys,
//! credential_process).

use std::path::Path;

use super::*;
use crate::config::{self, MapEnv};

const CONFIG: &str = "\
[default]
region = us-west-2

[profile cc]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ClaudeAccess
region = eu-central-1

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1

[profile keys]
region = us-east-2

[profile proc]
region = us-east-1
credential_process = sh -c 'echo {\\\"Version\\\":1,\\\"AccessKeyId\\\":\\\"ASIAPROCESS000000001\\\",\\\"SecretAccessKey\\\":\\\"s\\\",\\\"SessionToken\\\":\\\"t\\\",\\\"Expiration\\\":\\\"2099-01-01T00:00:00Z\\\"}'

[profile broken]
region = us-east-1
credential_process = sh -c 'echo need a login >&2; exit 3'
";

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws/sso/cache")).unwrap();
        std::fs::write(dir.path().join(".aws/config"), CONFIG).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "[keys]\naws_access_key_id = AKIAPROFILE000000001\naws_secret_access_key = k\n",
        )
        .unwrap();
        Self { dir }
    }

    fn env(&self) -> MapEnv {
        MapEnv::new([("HOME", self.dir.path().to_str().unwrap())])
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }
}

fn deployment(params: &[&str], env: &MapEnv) -> Deployment {
    let mut yaml = "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0\n".to_owned();
    for line in params {
        yaml.push_str(&format!("      {line}\n"));
    }
    let cfg = config::load_from_str(&yaml, Path::new("c.yaml"), env).unwrap();
    cfg.groups[0].deployments[0].as_ref().clone()
}

#[test]
fn plans_follow_litellms_keys() {
    let env = MapEnv::default();
    let d = deployment(
        &[
            "aws_access_key_id: AKIA1",
            "aws_secret_access_key: s",
            "aws_session_token: t",
            "aws_role_name: arn:aws:iam::1:role/R",
            "aws_session_name: me",
            "aws_external_id: x",
        ],
        &env,
    );
    let p = plan(&d);
    assert!(matches!(&p.base, Base::Keys { token: Some(t), .. } if t.expose() == "t"));
    let role = p.role.unwrap();
    assert_eq!(
        (role.arn.as_str(), role.session_name.as_deref(), role.external_id.as_deref()),
        ("arn:aws:iam::1:role/R", Some("me"), Some("x"))
    );
    let d =
        deployment(&["aws_web_identity_token: eyJ0", "aws_role_name: arn:aws:iam::1:role/W"], &env);
    let p = plan(&d);
    assert!(matches!(&p.base, Base::WebIdentity { role, .. } if role == "arn:aws:iam::1:role/W"));
    assert!(p.role.is_none(), "the role is the web identity's, not assumed again");
    let d = deployment(&["aws_profile_name: cc"], &env);
    assert!(matches!(plan(&d).base, Base::Profile(ref n) if n == "cc"));
    assert!(matches!(plan(&deployment(&[], &env)).base, Base::DefaultChain));
}

#[test]
fn the_region_comes_from_the_deployment_the_arn_or_the_profile() {
    let home = Home::new();
    let env = home.env();
    let aws = AwsEnvironment::snapshot(&env, &[]);
    let profiles = Profiles::load(&aws);
    let d = deployment(&["aws_region_name: ap-south-1", "aws_profile_name: cc"], &env);
    assert_eq!(region(&d, &profiles).unwrap().0, "ap-south-1");
    let d = deployment(&["aws_profile_name: cc"], &env);
    let (r, from) = region(&d, &profiles).unwrap();
    assert_eq!(r, "eu-central-1");
    assert!(from.contains("profile `cc`") && from.contains(".aws/config"), "{from}");
    assert_eq!(
        region(&deployment(&[], &env), &profiles).unwrap().0,
        "us-west-2",
        "default profile"
    );
    let env_region =
        MapEnv::new([("HOME", "/nonexistent"), ("AWS_DEFAULT_REGION", "ca-central-1")]);
    let d = deployment(&[], &env_region);
    let (r, from) = region(&d, &Profiles::default()).unwrap();
    assert_eq!(
        (r.as_str(), from.as_str()),
        ("ca-central-1", "AWS_DEFAULT_REGION from the process environment")
    );
    assert!(region(&deployment(&[], &MapEnv::default()), &Profiles::default()).is_none());
}

#[test]
fn descriptions_name_the_source_without_secrets() {
    let home = Home::new();
    let env = home.env();
    let aws = AwsEnvironment::snapshot(&env, &[]);
    let cache = Profiles::load(&aws).profile("cc").unwrap().sso_cache_file(&aws).unwrap();
    std::fs::write(&cache, r#"{"accessToken":"tok","expiresAt":"2099-01-01T00:00:00Z"}"#).unwrap();
    let r = describe(&deployment(&["aws_profile_name: cc"], &env), &aws);
    assert_eq!(r.kind, SourceKind::SsoSession);
    assert!(r.source.contains("profile `cc` (aws_profile_name in c.yaml:"), "{}", r.source);
    assert!(
        r.source.contains("SSO session `corp` (https://corp.awsapps.com/start)"),
        "{}",
        r.source
    );
    assert_eq!(r.sso_cache_file.as_deref(), Some(cache.as_path()));
    assert!(r.sso_token_expires.is_some());

    let keys = MapEnv::new([
        ("AWS_ACCESS_KEY_ID", "ASIASTALEKEY00000000"),
        ("AWS_SECRET_ACCESS_KEY", "verysecret"),
    ])
    .with("HOME", home.dir.path().to_str().unwrap(), crate::config::EnvOrigin::Process);
    let r = describe(&deployment(&[], &keys), &aws);
    assert_eq!(r.kind, SourceKind::StaticKeys);
    assert_eq!(r.key_prefix.as_deref(), Some("ASIA…"));
    assert!(r.source.contains("AWS_ACCESS_KEY_ID from the process environment"), "{}", r.source);
    assert!(!r.source.contains("verysecret") && !r.source.contains("STALEKEY"));

    let bearer = MapEnv::new([("AWS_BEARER_TOKEN_BEDROCK", "ABSKbedrockkey0123456789abcdef")]);
    let r = describe(&deployment(&[], &bearer), &aws);
    assert_eq!(r.kind, SourceKind::BedrockApiKey);
    assert!(r.source.starts_with("Bedrock API key ABSKbedr…"), "{}", r.source);
    assert_eq!(
        describe(&deployment(&["aws_profile_name: proc"], &env), &aws).kind,
        SourceKind::CredentialProcess
    );
}

#[tokio::test]
async fn a_profile_with_keys_resolves_and_exported_keys_do_not_shadow_it() {
    let home = Home::new();
    let env = home.env();
    let aws = Arc::new(AwsEnvironment::snapshot(&env, &[]));
    let d = deployment(&["aws_profile_name: keys"], &env);
    let creds = AwsCredentials::new(&d, aws, "us-east-2", http_client());
    let got = creds.get().await.unwrap();
    assert_eq!(got.access_key_id(), "AKIAPROFILE000000001");
    assert_eq!(creds.describe(&d).key_prefix.as_deref(), Some("AKIA…"));
}

#[tokio::test]
async fn the_profile_files_named_in_an_env_file_are_the_ones_read() {
    let home = Home::new();
    let alt = home.path("alt-credentials");
    std::fs::write(
        &alt,
        "[keys]\naws_access_key_id = AKIAFROMENVFILE00001\naws_secret_access_key = k\n",
    )
    .unwrap();
    let env_file = home.path("aws.env");
    std::fs::write(&env_file, format!("AWS_SHARED_CREDENTIALS_FILE={}\n", alt.display())).unwrap();
    let env = home.env();
    let aws = Arc::new(AwsEnvironment::snapshot(&env, &[env_file]));
    let d = deployment(&["aws_profile_name: keys"], &env);
    let got = AwsCredentials::new(&d, aws, "us-east-2", http_client()).get().await.unwrap();
    assert_eq!(got.access_key_id(), "AKIAFROMENVFILE00001");
}

#[tokio::test]
async fn credential_process_is_run_and_its_failure_is_reported() {
    let home = Home::new();
    let env = home.env();
    let aws = Arc::new(AwsEnvironment::snapshot(&env, &[]));
    let d = deployment(&["aws_profile_name: proc"], &env);
    let got = AwsCredentials::new(&d, aws.clone(), "us-east-1", http_client()).get().await.unwrap();
    assert_eq!(got.access_key_id(), "ASIAPROCESS000000001");
    assert!(got.expiry().is_some());
    let d = deployment(&["aws_profile_name: broken"], &env);
    let err = AwsCredentials::new(&d, aws, "us-east-1", http_client()).get().await.unwrap_err();
    assert!(err.detail.contains("need a login"), "{}", err.detail);
    let profiles = Profiles::load(&AwsEnvironment::snapshot(&env, &[]));
    let ctx = crate::classify::AwsContext { auth: auth(&d, &profiles), ..Default::default() };
    let e = crate::classify::bedrock_credentials_error(&ctx, err.failure, &err.detail);
    assert_eq!(e.diagnosis.unwrap().id, "AWS-04");
}

#[tokio::test]
async fn a_profile_that_does_not_exist_is_not_loaded() {
    let home = Home::new();
    let env = home.env();
    let aws = Arc::new(AwsEnvironment::snapshot(&env, &[]));
    let d = deployment(&["aws_profile_name: nope"], &env);
    let err =
        AwsCredentials::new(&d, aws.clone(), "us-east-1", http_client()).get().await.unwrap_err();
    assert!(err.detail.contains("nope"), "{err:?}");
    // The diagnosis says it is not defined, where it looked, and how to create it.
    let ctx = crate::classify::AwsContext {
        auth: auth(&d, &Profiles::load(&aws)),
        who: "the deployment of `balanced`".into(),
        ..Default::default()
    };
    let e = crate::classify::bedrock_credentials_error(&ctx, err.failure, &err.detail);
    assert_eq!(e.kind, crate::classify::ErrorKind::CredentialsMissing);
    let d = e.diagnosis.unwrap();
    assert_eq!(d.id, "AWS-04");
    let config = home.path(".aws/config").display().to_string();
    let credentials = home.path(".aws/credentials").display().to_string();
    for needle in [
        "Profile `nope` (aws_profile_name in c.yaml:".to_owned(),
        "is not defined in any file the gateway read".to_owned(),
        format!("{config} (no `[profile nope]` section), {credentials} (no `[nope]` section)"),
        "They define: default, cc, keys, proc, broken.".to_owned(),
    ] {
        assert!(d.cause.contains(&needle), "missing {needle:?} in {}", d.cause);
    }
    assert!(!d.cause.contains("was not enabled"), "{}", d.cause);
    for needle in [
        "`aws configure sso --profile nope`".to_owned(),
        format!("a `[profile nope]` section to {config}"),
        format!(
            "a `[nope]` section with `aws_access_key_id` and `aws_secret_access_key` to {credentials}"
        ),
    ] {
        assert!(d.remedy.contains(&needle), "missing {needle:?} in {}", d.remedy);
    }
}

#[test]
fn region_problems_name_each_deployment_without_a_region() {
    let home = Home::new();
    std::fs::write(home.path(".aws/config"), "[profile cc]\nsso_session = corp\n").unwrap();
    let env = home.env();
    let yaml = "model_list:\n  - model_name: a\n    litellm_params:\n      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0\n      aws_profile_name: cc\n  - model_name: b\n    litellm_params:\n      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0\n      aws_region_name: us-east-1\n  - model_name: c\n    litellm_params:\n      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0\n      mock_response: hi\n";
    let cfg = config::load_from_str(yaml, Path::new("c.yaml"), &env).unwrap();
    let problems = region_problems(&cfg, &AwsEnvironment::snapshot(&env, &[]));
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0.alias, "a");
    let d = problems[0].1.diagnosis.as_ref().unwrap();
    assert_eq!(d.id, "AWS-14");
    assert!(d.cause.contains("`region` of profile `cc`") && d.cause.contains("`a`"), "{}", d.cause);
}

#[tokio::test]
async fn a_named_profile_with_no_files_at_all_is_reported_as_not_defined() {
    let dir = tempfile::tempdir().unwrap();
    let env = MapEnv::new([("HOME", dir.path().to_str().unwrap())]);
    let aws = Arc::new(AwsEnvironment::snapshot(&env, &[]));
    let d = deployment(&["aws_profile_name: work"], &env);
    let err =
        AwsCredentials::new(&d, aws.clone(), "us-east-1", http_client()).get().await.unwrap_err();
    let ctx =
        crate::classify::AwsContext { auth: auth(&d, &Profiles::load(&aws)), ..Default::default() };
    let e = crate::classify::bedrock_credentials_error(&ctx, err.failure, &err.detail);
    let diag = e.diagnosis.unwrap();
    assert_eq!(diag.id, "AWS-04", "{err:?}");
    let config = dir.path().join(".aws/config").display().to_string();
    assert!(diag.cause.contains(&format!("{config} (does not exist)")), "{}", diag.cause);
    assert!(diag.cause.contains("They define no profile at all."), "{}", diag.cause);
    assert!(diag.remedy.contains("aws configure sso --profile work"), "{}", diag.remedy);
}
