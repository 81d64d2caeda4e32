//! What a Bedrock model id says: a bare foundation-model id, a geo inference profile
//! (`us.`, `eu.`, `apac.`, `global.`, `jp.` …) or an ARN — its region, whether it is a Claude
//! model, how it travels in the URL path, and the facts diagnoses need (the inference profile
//! to use instead, the minimal IAM policy, the Anthropic API equivalent).
//!
//! Pure string work: no I/O, never guesses a region it was not given.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Smithy's label encoding: everything but RFC 3986 unreserved characters, so `:` is `%3A`
/// and the `/` of an ARN is `%2F`, as the AWS SDKs send them.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// As configured (after the `bedrock/` prefix).
    pub raw: String,
    pub form: Form,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `anthropic.claude-…-v1:0`.
    Bare,
    /// `us.anthropic.claude-…`: the geo prefix without its dot.
    Profile { geo: String },
    /// `arn:PARTITION:bedrock:REGION:ACCOUNT:KIND/ID`.
    Arn { partition: String, region: String, account: String, kind: String, id: String },
}

impl ModelId {
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim().to_owned();
        let form = if let Some(arn) = parse_arn(&raw) {
            arn
        } else {
            match raw.split_once('.') {
                Some((geo, rest)) if is_geo(geo) && rest.contains('.') => {
                    Form::Profile { geo: geo.to_owned() }
                }
                _ => Form::Bare,
            }
        };
        Self { raw, form }
    }

    /// The foundation-model id inside, when the id names one (`anthropic.claude-…`).
    pub fn foundation(&self) -> Option<&str> {
        match &self.form {
            Form::Bare => Some(&self.raw),
            Form::Profile { geo } => self.raw.get(geo.len() + 1..),
            Form::Arn { kind, id, .. } => match kind.as_str() {
                "foundation-model" => Some(id),
                "inference-profile" => match ModelId::parse(id).form {
                    Form::Profile { geo } => id.get(geo.len() + 1..),
                    _ => Some(id),
                },
                _ => None,
            },
        }
    }

    /// The geo prefix of an inference profile id (`us`, `global` …).
    pub fn geo(&self) -> Option<&str> {
        match &self.form {
            Form::Profile { geo } => Some(geo),
            Form::Bare | Form::Arn { .. } => None,
        }
    }

    /// The resource an ARN names, whatever its kind: an inference profile id, a
    /// foundation-model id, an application inference profile's opaque id.
    pub fn arn_resource(&self) -> Option<&str> {
        match &self.form {
            Form::Arn { id, .. } => Some(id),
            Form::Bare | Form::Profile { .. } => None,
        }
    }

    /// The region an ARN names (empty for a foundation model's region-less ARN: none).
    pub fn arn_region(&self) -> Option<&str> {
        match &self.form {
            Form::Arn { region, .. } if !region.is_empty() => Some(region),
            _ => None,
        }
    }

    /// Whether this is a Claude model (or an ARN that does not say, such as an application
    /// inference profile, which is taken at its word).
    pub fn is_claude(&self) -> bool {
        match self.foundation() {
            Some(f) => f.starts_with("anthropic.claude"),
            None => true,
        }
    }

    /// The path segment for `/model/{id}/…`, encoded as the AWS SDKs encode it.
    pub fn path_segment(&self) -> String {
        utf8_percent_encode(&self.raw, LABEL).to_string()
    }

    /// The inference profile id to use in `region` for a bare id (AWS-09): `us.` for us-*,
    /// `eu.` for eu-*, `apac.` for ap-*, `global.` elsewhere.
    pub fn profile_for_region(&self, region: &str) -> Option<String> {
        let foundation = self.foundation()?;
        Some(format!("{}.{foundation}", geo_for_region(region)))
    }

    /// The Anthropic API model id of the same model (`claude-sonnet-4-5-20250929`), to name
    /// a fallback deployment.
    pub fn anthropic_equivalent(&self) -> Option<String> {
        let name = self.foundation()?.strip_prefix("anthropic.")?;
        // `-v1:0`, `-v2:0`, `-v1`: Bedrock's version suffix.
        let cut = name.rfind("-v").filter(|i| {
            let version = &name[i + 2..];
            !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == ':')
        });
        Some(cut.map_or(name, |i| &name[..i]).to_owned())
    }

    /// The minimal IAM policy (JSON) that lets an identity invoke exactly this model from
    /// `region`: the foundation model (in every region a cross-region profile can route to)
    /// and the profile itself. `account` fills the profile ARN (`*` when unknown).
    pub fn iam_policy(&self, region: &str, account: Option<&str>) -> String {
        let account = account.unwrap_or("*");
        let mut resources = Vec::new();
        match &self.form {
            Form::Bare => {
                resources.push(format!("arn:aws:bedrock:{region}::foundation-model/{}", self.raw));
            }
            Form::Profile { geo } => {
                resources.push(format!(
                    "arn:aws:bedrock:{region}:{account}:inference-profile/{}",
                    self.raw
                ));
                self.destinations(&mut resources, "aws", geo);
            }
            Form::Arn { partition, kind, id, .. } => {
                resources.push(self.raw.clone());
                if kind == "inference-profile"
                    && let Form::Profile { geo } = ModelId::parse(id).form
                {
                    self.destinations(&mut resources, partition, &geo);
                }
            }
        }
        let resources: Vec<String> = resources.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            "{{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \
             \"Action\": [\"bedrock:InvokeModel\", \"bedrock:InvokeModelWithResponseStream\"], \
             \"Resource\": [{}]}}]}}",
            resources.join(", ")
        )
    }

    /// Foundation-model ARNs in every region a geo profile routes to.
    fn destinations(&self, out: &mut Vec<String>, partition: &str, geo: &str) {
        let Some(foundation) = self.foundation() else { return };
        let regions = match geo {
            "us" => "us-*",
            "us-gov" => "us-gov-*",
            "eu" => "eu-*",
            "apac" => "ap-*",
            "jp" => "ap-northeast-*",
            "au" => "ap-southeast-*",
            "ca" => "ca-*",
            _ => "*",
        };
        out.push(format!("arn:{partition}:bedrock:{regions}::foundation-model/{foundation}"));
        if geo == "global" {
            // IAM sees a global profile's destination as a region-less foundation model.
            out.push(format!("arn:{partition}:bedrock:::foundation-model/{foundation}"));
        }
    }
}

/// The geo prefix of inference profiles for a region.
pub fn geo_for_region(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "us-gov"
    } else if region.starts_with("us-") {
        "us"
    } else if region.starts_with("eu-") {
        "eu"
    } else if region.starts_with("ap-") {
        "apac"
    } else {
        "global"
    }
}

/// Geo prefixes are short lowercase words (`us`, `eu`, `apac`, `global`, `jp`, `us-gov`);
/// a vendor name (`anthropic`, `amazon`, `meta`) is not one.
fn is_geo(word: &str) -> bool {
    const VENDORS: &[&str] = &[
        "anthropic",
        "amazon",
        "meta",
        "mistral",
        "cohere",
        "ai21",
        "stability",
        "deepseek",
        "writer",
        "qwen",
        "openai",
        "twelvelabs",
        "luma",
        "moonshot",
    ];
    !word.is_empty()
        && word.len() <= 7
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && !VENDORS.contains(&word)
}

fn parse_arn(raw: &str) -> Option<Form> {
    let mut parts = raw.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("bedrock"), Some(region), Some(account), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (kind, id) = rest.split_once('/')?;
    Some(Form::Arn {
        partition: partition.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
        kind: kind.to_owned(),
        id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

    #[test]
    fn the_three_forms_are_told_apart() {
        let bare = ModelId::parse(SONNET);
        assert_eq!(bare.form, Form::Bare);
        assert_eq!(bare.foundation(), Some(SONNET));
        let us = ModelId::parse(&format!("us.{SONNET}"));
        assert_eq!(us.form, Form::Profile { geo: "us".into() });
        assert_eq!(us.foundation(), Some(SONNET));
        for geo in ["eu", "apac", "global", "jp", "us-gov"] {
            let id = ModelId::parse(&format!("{geo}.{SONNET}"));
            assert_eq!(id.form, Form::Profile { geo: geo.into() }, "{geo}");
            assert!(id.is_claude());
        }
        let arn = ModelId::parse(&format!(
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.{SONNET}"
        ));
        assert_eq!(arn.foundation(), Some(SONNET));
        let fm = ModelId::parse(&format!("arn:aws:bedrock:eu-west-1::foundation-model/{SONNET}"));
        assert_eq!(fm.foundation(), Some(SONNET));
        let app = ModelId::parse(
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
        );
        assert_eq!(app.foundation(), None);
        assert!(app.is_claude(), "an opaque ARN is taken at its word");
        assert!(!ModelId::parse("amazon.nova-pro-v1:0").is_claude());
        assert!(!ModelId::parse("us.meta.llama3-3-70b-instruct-v1:0").is_claude());
    }

    #[test]
    fn the_path_segment_is_encoded_as_the_sdks_encode_it() {
        assert_eq!(
            ModelId::parse(&format!("us.{SONNET}")).path_segment(),
            "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
        );
        assert_eq!(
            ModelId::parse("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x-v1:0")
                .path_segment(),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x-v1%3A0"
        );
    }

    #[test]
    fn the_profile_for_a_region_and_the_anthropic_equivalent() {
        let bare = ModelId::parse(SONNET);
        assert_eq!(bare.profile_for_region("us-east-1").unwrap(), format!("us.{SONNET}"));
        assert_eq!(bare.profile_for_region("eu-central-1").unwrap(), format!("eu.{SONNET}"));
        assert_eq!(bare.profile_for_region("ap-northeast-1").unwrap(), format!("apac.{SONNET}"));
        assert_eq!(bare.profile_for_region("sa-east-1").unwrap(), format!("global.{SONNET}"));
        assert_eq!(bare.anthropic_equivalent().as_deref(), Some("claude-sonnet-4-5-20250929"));
        let v2 = ModelId::parse("us.anthropic.claude-3-5-sonnet-20241022-v2:0");
        assert_eq!(v2.anthropic_equivalent().as_deref(), Some("claude-3-5-sonnet-20241022"));
        let opus = ModelId::parse("global.anthropic.claude-opus-4-6-v1");
        assert_eq!(opus.anthropic_equivalent().as_deref(), Some("claude-opus-4-6"));
    }

    #[test]
    fn the_policy_covers_the_profile_and_every_destination() {
        let p = ModelId::parse(&format!("us.{SONNET}")).iam_policy("us-east-1", Some("1234"));
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        let resources = &v["Statement"][0]["Resource"];
        assert_eq!(
            resources,
            &serde_json::json!([
                format!("arn:aws:bedrock:us-east-1:1234:inference-profile/us.{SONNET}"),
                format!("arn:aws:bedrock:us-*::foundation-model/{SONNET}"),
            ])
        );
        let g = ModelId::parse(&format!("global.{SONNET}")).iam_policy("eu-west-1", None);
        assert!(g.contains(&format!("arn:aws:bedrock:::foundation-model/{SONNET}")), "{g}");
        assert!(g.contains("eu-west-1:*:inference-profile"), "{g}");
        let b = ModelId::parse(SONNET).iam_policy("us-west-2", None);
        assert!(b.contains(&format!("arn:aws:bedrock:us-west-2::foundation-model/{SONNET}")));
        assert!(b.contains("bedrock:InvokeModelWithResponseStream"));
    }
}
