//! The minimal IAM policy for the configured Bedrock deployments: `bedrock:InvokeModel` and
//! `bedrock:InvokeModelWithResponseStream` on exactly the resources IAM evaluates for each
//! model id — the foundation model for a bare id; for a geo or global inference profile the
//! profile ARN plus the foundation model in every destination region ([`super::regions`]),
//! and for `global.` the region-less foundation-model ARN as well.
//!
//! Pure string work: no I/O. The account comes from the caller (STS); when unknown the
//! profile ARNs carry `*` and a note says so.

use serde::Serialize;
use serde_json::{Value, json};

use super::regions;

/// The actions a chat deployment needs: InvokeModel (and Converse), the streaming variant
/// (and ConverseStream).
pub const ACTIONS: [&str; 2] = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"];

/// Vendors whose model ids start `vendor.`; a first word that is none of these, followed
/// by one of them, is a geo prefix the table may not know yet.
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

/// What one deployment needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Needs {
    pub alias: String,
    pub deployment: String,
    pub model: String,
    /// The source region (where requests are sent), `None` when the config gives none.
    pub region: Option<String>,
    pub resources: Vec<String>,
    /// What a person should know: a placeholder used, a geo prefix the table lacks.
    pub notes: Vec<String>,
}

/// The ARNs IAM evaluates when `model` is invoked from `region` by `account`.
pub fn resources(
    model: &str,
    region: Option<&str>,
    account: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut notes = Vec::new();
    let source = region.unwrap_or("*");
    if region.is_none() {
        notes.push("no region is configured: `*` stands for the region requests go to".to_owned());
    }
    let account = account.unwrap_or("*");
    let part = regions::partition(source);
    let mut out = Vec::new();
    if let Some(arn) = parse_arn(model) {
        out.push(model.to_owned());
        match arn.kind {
            "foundation-model" => {}
            "inference-profile" => match split_geo(arn.id) {
                Some((geo, foundation)) => {
                    destinations(&mut out, &mut notes, arn.partition, arn.region, geo, foundation)
                }
                None => notes.push(format!("`{}` names no foundation model", arn.id)),
            },
            other => notes.push(format!(
                "a {other} ARN does not say which foundation models it uses: add their \
                 foundation-model ARNs (`aws bedrock get-inference-profile` lists them)"
            )),
        }
        return (out, notes);
    }
    match split_geo(model) {
        Some((geo, foundation)) => {
            out.push(format!("arn:{part}:bedrock:{source}:{account}:inference-profile/{model}"));
            destinations(&mut out, &mut notes, part, source, geo, foundation);
        }
        None => out.push(format!("arn:{part}:bedrock:{source}::foundation-model/{model}")),
    }
    (out, notes)
}

/// The foundation model in every region the profile `geo` routes to.
fn destinations(
    out: &mut Vec<String>,
    notes: &mut Vec<String>,
    part: &str,
    source: &str,
    geo: &str,
    foundation: &str,
) {
    if geo == regions::GLOBAL {
        out.push(format!("arn:{part}:bedrock:{source}::foundation-model/{foundation}"));
        out.push(format!("arn:{part}:bedrock:::foundation-model/{foundation}"));
        return;
    }
    match regions::destinations(geo) {
        Some(list) => {
            let part = regions::partition(list.first().copied().unwrap_or(source));
            out.extend(
                list.iter()
                    .map(|r| format!("arn:{part}:bedrock:{r}::foundation-model/{foundation}")),
            );
        }
        None => {
            notes.push(format!(
                "the geo prefix `{geo}.` is not in the built-in table (as of {}): `*` stands for \
                 its destination regions",
                regions::AS_OF
            ));
            out.push(format!("arn:{part}:bedrock:*::foundation-model/{foundation}"));
        }
    }
}

/// `geo.vendor.model` → (`geo`, `vendor.model`).
fn split_geo(id: &str) -> Option<(&str, &str)> {
    let (first, rest) = id.split_once('.')?;
    let known = first == regions::GLOBAL || regions::destinations(first).is_some();
    let vendor_follows = VENDORS.iter().any(|v| rest.starts_with(&format!("{v}.")));
    (known || (vendor_follows && !VENDORS.contains(&first))).then_some((first, rest))
}

struct Arn<'a> {
    partition: &'a str,
    region: &'a str,
    kind: &'a str,
    id: &'a str,
}

fn parse_arn(raw: &str) -> Option<Arn<'_>> {
    let mut parts = raw.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("bedrock"), Some(region), Some(_account), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let (kind, id) = rest.split_once('/')?;
    Some(Arn { partition, region, kind, id })
}

/// The IAM policy document granting [`ACTIONS`] on `resources` (deduplicated, in order).
pub fn document(resources: &[String]) -> Value {
    let mut unique: Vec<&str> = Vec::with_capacity(resources.len());
    for r in resources {
        if !unique.contains(&r.as_str()) {
            unique.push(r);
        }
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SwitchyardInvokeConfiguredModels",
            "Effect": "Allow",
            "Action": ACTIONS,
            "Resource": unique,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAIKU: &str = "anthropic.claude-3-haiku-20240307-v1:0";
    const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

    #[test]
    fn a_bare_id_is_its_foundation_model_in_the_region() {
        let (r, notes) = resources(HAIKU, Some("us-east-1"), Some("123456789012"));
        assert_eq!(r, [format!("arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}")]);
        assert!(notes.is_empty());
    }

    #[test]
    fn a_geo_profile_is_the_profile_and_the_model_in_every_destination() {
        let (r, _) = resources(&format!("eu.{SONNET}"), Some("eu-west-1"), Some("1"));
        assert_eq!(r[0], format!("arn:aws:bedrock:eu-west-1:1:inference-profile/eu.{SONNET}"));
        assert_eq!(r.len(), 1 + regions::destinations("eu").unwrap().len());
        assert!(r.contains(&format!("arn:aws:bedrock:eu-central-1::foundation-model/{SONNET}")));
        let (gov, _) = resources(&format!("us-gov.{SONNET}"), Some("us-gov-west-1"), None);
        assert!(gov[0].starts_with("arn:aws-us-gov:bedrock:us-gov-west-1:*:"), "{gov:?}");
        assert!(gov[1].starts_with("arn:aws-us-gov:bedrock:us-gov-east-1::"), "{gov:?}");
    }

    #[test]
    fn a_global_profile_adds_the_region_less_model() {
        let (r, _) = resources(&format!("global.{SONNET}"), Some("us-west-2"), Some("1"));
        assert_eq!(
            r,
            [
                format!("arn:aws:bedrock:us-west-2:1:inference-profile/global.{SONNET}"),
                format!("arn:aws:bedrock:us-west-2::foundation-model/{SONNET}"),
                format!("arn:aws:bedrock:::foundation-model/{SONNET}"),
            ]
        );
    }

    #[test]
    fn unknown_geos_arns_and_missing_regions_are_said() {
        let (r, notes) = resources(&format!("ca.{SONNET}"), Some("ca-central-1"), None);
        assert_eq!(r[1], format!("arn:aws:bedrock:*::foundation-model/{SONNET}"));
        assert!(notes[0].contains("`ca.`"), "{notes:?}");
        let arn = format!("arn:aws:bedrock:us-east-2:42:inference-profile/us.{SONNET}");
        let (r, notes) = resources(&arn, None, None);
        assert_eq!(r[0], arn);
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(notes[0].contains("no region"));
        let app = "arn:aws:bedrock:us-east-1:42:application-inference-profile/abc";
        let (r, notes) = resources(app, Some("us-east-1"), None);
        assert_eq!(r, [app]);
        assert!(notes[0].contains("application-inference-profile"));
        assert_eq!(split_geo(HAIKU), None);
        assert_eq!(split_geo("amazon.nova-pro-v1:0"), None);
    }

    #[test]
    fn the_document_is_iam_json_with_unique_resources() {
        let doc = document(&["a".to_owned(), "b".to_owned(), "a".to_owned()]);
        assert_eq!(doc["Statement"][0]["Resource"], json!(["a", "b"]));
        assert_eq!(doc["Statement"][0]["Action"], json!(ACTIONS));
        assert_eq!(doc["Version"], "2012-10-17");
    }
}
