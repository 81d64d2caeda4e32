//! The diagnosis of each AWS catalog row (AWS-01 … AWS-17): what happened to which
//! deployment and credentials, and the remedy as a command to run or a config line to write.
//! Text only; the kind is decided in `mod.rs`.

use std::time::SystemTime;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use http::HeaderMap;

use super::{AwsAuth, AwsContext, CredentialFailure, UndefinedProfile, UsedKey, header};
use crate::classify::{Diagnosis, ErrorKind};

/// Claude ids Bedrock serves, for "did you mean" suggestions (AWS-10).
const KNOWN_MODELS: &[&str] = &[
    "anthropic.claude-opus-4-6-v1",
    "anthropic.claude-opus-4-5-20251101-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-opus-4-1-20250805-v1:0",
    "anthropic.claude-opus-4-20250514-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
];

/// AWS-01.
pub(super) fn unrecognised(ctx: &AwsContext, message: &str) -> Diagnosis {
    let mut cause = format!(
        "AWS did not recognise the credentials of {} — this is not a missing permission \
         (\"{message}\"). They came from {}.",
        ctx.who,
        ctx.creds()
    );
    let remedy = match &ctx.auth {
        AwsAuth::Keys { key_prefix, session_token, source } => {
            if key_prefix.starts_with("ASIA") && !session_token {
                cause.push_str(
                    " The key starts with ASIA (temporary credentials) but no session token \
                     (AWS_SESSION_TOKEN / aws_session_token) came with it.",
                );
            }
            let temporary = key_prefix.starts_with("ASIA");
            if source.starts_with("written in") {
                // Keys pasted into the config: nothing was exported, so say what to edit.
                cause.push_str(if temporary {
                    " Temporary keys written into a config file expire within hours and are \
                     then unknown to AWS."
                } else {
                    " A long-term key AWS does not know was deleted, deactivated or mistyped."
                });
                let p = ctx.profile();
                format!(
                    "Remove aws_access_key_id, aws_secret_access_key and aws_session_token from \
                     the deployment and set `aws_profile_name: {p}` so the gateway resolves and \
                     refreshes credentials itself; run `aws sso login --profile {p}`; check with \
                     `aws sts get-caller-identity --profile {p}`."
                )
            } else {
                cause.push_str(
                    " Keys exported into the environment or an env file are usually stale \
                     temporary credentials from an earlier session.",
                );
                capitalise(&ctx.use_a_profile())
            }
        }
        _ => {
            let p = ctx.profile();
            cause.push_str(
                " The profile may resolve to other keys than you think, or they were revoked.",
            );
            format!(
                "Check which identity it resolves to with `aws sts get-caller-identity --profile \
                 {p}`; for SSO run {}; the next request then works without a restart.",
                ctx.login()
            )
        }
    };
    Diagnosis::new("AWS-01", cause, remedy)
}

/// AWS-02.
pub(super) fn expired(ctx: &AwsContext, used: Option<&UsedKey>, message: &str) -> Diagnosis {
    let at = used
        .and_then(|u| u.expires_at)
        .and_then(|t| DateTime::from(t).fmt(Format::DateTime).ok())
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    let cause = format!(
        "The temporary credentials of {} ({}) expired{at} (\"{message}\").",
        ctx.who,
        ctx.creds()
    );
    let remedy = match &ctx.auth {
        AwsAuth::Keys { .. } => format!(
            "Keys from environment variables or an env file cannot refresh: {}",
            ctx.use_a_profile()
        ),
        _ => format!("Run {}; the next request then works without a restart.", ctx.login()),
    };
    Diagnosis::new("AWS-02", cause, remedy)
}

/// AWS-11: the key id exists but the secret is not its own.
pub(super) fn bad_secret(ctx: &AwsContext, used: Option<&UsedKey>) -> Diagnosis {
    let key = used.map(|u| u.key_prefix.clone()).or_else(|| match &ctx.auth {
        AwsAuth::Keys { key_prefix, .. } => Some(key_prefix.clone()),
        _ => None,
    });
    let key = key.unwrap_or_else(|| "in use".to_owned());
    Diagnosis::new(
        "AWS-11",
        format!(
            "The secret access key does not belong to the access key {key} of {} ({}): AWS \
             calculated a different signature.",
            ctx.who,
            ctx.creds()
        ),
        format!(
            "Re-issue the key pair (or copy both halves again from the same source), or name \
             the profile instead (`aws_profile_name: {}`) so the gateway resolves matching \
             keys itself.",
            ctx.profile()
        ),
    )
}

/// AWS-12: the request's signing time and AWS's clock differ by more than 5 minutes.
pub(super) fn clock_skew(ctx: &AwsContext, message: &str, headers: &HeaderMap) -> Diagnosis {
    // "Signature expired: OURS is now earlier than … (THEIRS - 5 min.)" and
    // "Signature not yet current: OURS is still later than … (THEIRS + 5 min.)".
    let stamps: Vec<i64> =
        message.split(|c: char| !c.is_ascii_alphanumeric()).filter_map(compact_time).collect();
    let skew = match (stamps.first(), stamps.last()) {
        (Some(ours), Some(theirs)) if stamps.len() >= 2 => Some(ours - theirs),
        _ => header(headers, "date")
            .and_then(|d| DateTime::from_str(d, Format::HttpDate).ok())
            .map(|theirs| DateTime::from(SystemTime::now()).secs() - theirs.secs()),
    };
    let off = match skew {
        Some(s) => format!(
            "The local clock is {} by about {} minutes",
            if s < 0 { "behind" } else { "ahead" },
            (s.unsigned_abs() + 30) / 60
        ),
        None => "The local clock is off".to_owned(),
    };
    Diagnosis::new(
        "AWS-12",
        format!(
            "{off}: AWS refused the signature of {} because SigV4 allows 5 minutes (\"{message}\").",
            ctx.who
        ),
        "Fix the system clock: enable NTP (`sudo timedatectl set-ntp true`, or `sudo chronyc \
         makestep`), then retry.",
    )
}

/// AWS-13.
pub(super) fn bad_api_key(ctx: &AwsContext) -> Diagnosis {
    Diagnosis::new(
        "AWS-13",
        format!(
            "Bedrock rejected {} of {}: it is not a valid Bedrock API key (expired, made for \
             another region than {}, or not a Bedrock key at all).",
            ctx.creds(),
            ctx.who,
            ctx.region()
        ),
        format!(
            "Generate a new API key in the Bedrock console for {} (short-term keys last at \
             most 12 hours and work only in their region) and set it in \
             AWS_BEARER_TOKEN_BEDROCK or `api_key`; or remove both to sign with AWS \
             credentials (`aws_profile_name: {}`).",
            ctx.region(),
            ctx.profile()
        ),
    )
}

/// AccessDeniedException: model access (AWS-07), Marketplace (AWS-08), an explicit deny
/// (AWS-06), a missing permission (AWS-05) or a rejected API key (AWS-13).
pub(super) fn access_denied(
    ctx: &AwsContext,
    lower: &str,
    message: &str,
) -> (ErrorKind, Option<Diagnosis>) {
    if lower.contains("api key") {
        (ErrorKind::CredentialsInvalid, Some(bad_api_key(ctx)))
    } else if lower.contains("marketplace") {
        let model = ctx.foundation.as_deref().unwrap_or(&ctx.model);
        (
            ErrorKind::ModelAccess,
            Some(Diagnosis::new(
                "AWS-08",
                format!(
                    "Bedrock subscribes the account to `{model}` on AWS Marketplace on first use, \
                     but the identity of {} may not (\"{message}\").",
                    ctx.who
                ),
                "Grant aws-marketplace:ViewSubscriptions and aws-marketplace:Subscribe to the \
                 identity once (or have an administrator enable the model for the account), \
                 then retry after a few minutes.",
            )),
        )
    } else if lower.contains("don't have access to the model")
        || lower.contains("account is not authorized")
    {
        (ErrorKind::ModelAccess, Some(no_model_access(ctx)))
    } else {
        (ErrorKind::PermissionDenied, Some(permission(ctx, message)))
    }
}

/// AWS-05 / AWS-06 from "User: ARN is not authorized to perform: ACTION on resource: R …".
pub(super) fn permission(ctx: &AwsContext, message: &str) -> Diagnosis {
    let between = |from: &str, to: &str| {
        let rest = &message[message.find(from)? + from.len()..];
        let end = rest.find(to).unwrap_or(rest.len());
        Some(rest[..end].trim().trim_end_matches('.').to_owned())
    };
    let named = between("User: ", " is not authorized").or_else(|| {
        let end = message.find(" may not call ")?;
        Some(message[..end].trim().to_owned())
    });
    let action = between("perform: ", " on resource").or_else(|| between("may not call ", " on "));
    let (Some(identity), Some(action)) = (named, action) else {
        return unexplained_denial(ctx, message);
    };
    // STS's AssumeRole is about the role, not the model.
    let assume = action.starts_with("sts:AssumeRole");
    let resource = between("on resource: ", " because")
        .or_else(|| between("on resource: ", " with an explicit"))
        .or_else(|| assume.then(|| ctx.role.clone()).flatten())
        .unwrap_or_else(|| ctx.model.clone());
    // arn:aws:sts::ACCOUNT:assumed-role/AWSReservedSSO_<set>_<hash>/user
    let account = identity
        .split(':')
        .nth(4)
        .filter(|a| a.chars().all(|c| c.is_ascii_digit()) && !a.is_empty());
    let permission_set = identity
        .split("AWSReservedSSO_")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|role| role.rsplit_once('_').map(|(set, _)| set.to_owned()));
    let who_can = match &permission_set {
        Some(set) => format!(
            "the administrator of IAM Identity Center must add it to the permission set \
             `{set}` (Permission sets → {set} → inline policy)"
        ),
        None => format!("an AWS administrator must attach it to {identity}"),
    };
    let explicit = message
        .find("with an explicit deny")
        .map(|i| message[i..].trim_end_matches('.').to_owned());
    if let Some(deny) = explicit {
        let global = if ctx.model.starts_with("global.") {
            let geo = ctx
                .profile_model
                .clone()
                .unwrap_or_else(|| ctx.model.replacen("global.", "us.", 1));
            format!(
                " Global profiles route to any region and region conditions often block them: \
                 try the geo profile `model: {}/{geo}`.",
                ctx.prefix
            )
        } else {
            String::new()
        };
        return Diagnosis::new(
            "AWS-06",
            format!(
                "{identity} may not call {action} on {resource} ({}), {deny}. The credentials are \
                 fine ({}).",
                ctx.who,
                ctx.creds()
            ),
            format!(
                "An explicit deny wins over any allow, so adding a policy will not help: the \
                 organisation's administrator must change that deny (the service control policy \
                 or the identity's policy).{global}{}",
                ctx.fallback_hint()
            ),
        );
    }
    let set =
        permission_set.map(|s| format!(" It is the SSO permission set `{s}`.")).unwrap_or_default();
    let (policy, trust) = if assume {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]
        });
        let trust = format!(
            " The role's trust policy must also name {identity} as a principal allowed to \
             assume it."
        );
        (policy.to_string(), trust)
    } else {
        (ctx.policy_template.replace("{account}", account.unwrap_or("*")), String::new())
    };
    Diagnosis::new(
        "AWS-05",
        format!(
            "{identity} may not call {action} on {resource} ({}); the credentials are fine ({}), \
             a permission is missing.{set}",
            ctx.who,
            ctx.creds()
        ),
        format!("Grant this minimal policy — {who_can}: {policy}.{trust}{}", ctx.fallback_hint()),
    )
}

/// AWS-05 for a refusal that names neither a permission nor the credentials (a bare 403,
/// "Access Denied" from a proxy): say so, and check the credentials before granting anything.
fn unexplained_denial(ctx: &AwsContext, message: &str) -> Diagnosis {
    let p = ctx.profile();
    Diagnosis::new(
        "AWS-05",
        format!(
            "{} refused the request of {} (\"{message}\") without saying whether a permission \
             is missing or the credentials are not recognised ({}).",
            ctx.endpoint,
            ctx.who,
            ctx.creds()
        ),
        format!(
            "First check that AWS recognises the credentials: `aws sts get-caller-identity \
             --profile {p}` (`switchyard doctor` asks STS too). If it names the identity you \
             expect, grant it this minimal policy: {}. If the endpoint is a proxy, check its \
             access rules.{}",
            ctx.policy_template.replace("{account}", "*"),
            ctx.fallback_hint()
        ),
    )
}

/// AWS-07.
pub(super) fn no_model_access(ctx: &AwsContext) -> Diagnosis {
    let model = ctx.foundation.as_deref().unwrap_or(&ctx.model);
    Diagnosis::new(
        "AWS-07",
        format!(
            "The AWS account behind {} has not been given access to model `{model}` in {}.",
            ctx.who,
            ctx.region()
        ),
        format!(
            "Enable it in the Bedrock console in {} (Model access → {model} → request access; \
             Anthropic models ask for the use-case form once), then retry.",
            ctx.region()
        ),
    )
}

/// AWS-09.
pub(super) fn needs_profile(ctx: &AwsContext) -> Diagnosis {
    let profile = ctx.profile_model.clone().unwrap_or_else(|| format!("us.{}", ctx.model));
    let global = ctx
        .foundation
        .as_deref()
        .map(|f| format!(" (or `model: {}/global.{f}` to route to any region)", ctx.prefix))
        .unwrap_or_default();
    Diagnosis::new(
        "AWS-09",
        format!(
            "Model `{}` cannot be invoked on demand in {} ({}): this model is served only \
             through an inference profile.",
            ctx.model,
            ctx.region(),
            ctx.who
        ),
        format!(
            "Write the inference profile for {} in the deployment: `model: {}/{profile}`{global}, \
             then reload.",
            ctx.region(),
            ctx.prefix
        ),
    )
}

/// AWS-10.
pub(super) fn model_not_found(ctx: &AwsContext) -> Diagnosis {
    let foundation = ctx.foundation.as_deref().unwrap_or(&ctx.model);
    let geo = ctx.model.strip_suffix(foundation).unwrap_or_default();
    let matches: Vec<String> =
        close_matches(foundation).into_iter().map(|m| format!("{geo}{m}")).collect();
    let mut cause = format!(
        "Bedrock in {} does not know the model id `{}` ({}).",
        ctx.region(),
        ctx.model,
        ctx.who
    );
    if !matches.is_empty() {
        cause.push_str(&format!(" Close matches: {}.", matches.join(", ")));
    }
    let example = matches.first().cloned().unwrap_or_else(|| {
        ctx.profile_model
            .clone()
            .unwrap_or_else(|| "us.anthropic.claude-sonnet-4-5-20250929-v1:0".to_owned())
    });
    Diagnosis::new(
        "AWS-10",
        cause,
        format!(
            "Write an id Bedrock serves in {region}, e.g. `model: {}/{example}` (`aws bedrock \
             list-inference-profiles --region {region}` lists them); a geo prefix must match the \
             region (us. for us-*, eu. for eu-*, apac. for ap-*).",
            ctx.prefix,
            region = ctx.region()
        ),
    )
}

pub(super) fn wrong_endpoint(ctx: &AwsContext) -> Diagnosis {
    Diagnosis::new(
        "AWS-10",
        format!("{} does not serve the Bedrock runtime API used by {}.", ctx.endpoint, ctx.who),
        "Remove `aws_bedrock_runtime_endpoint` (and AWS_ENDPOINT_URL_BEDROCK_RUNTIME) to use \
         https://bedrock-runtime.<region>.amazonaws.com, or point it at a Bedrock runtime \
         endpoint.",
    )
}

/// AWS-15.
pub(super) fn throttled(ctx: &AwsContext, message: &str) -> Diagnosis {
    // Name the profile only when the deployment does not already use one (an id with a
    // geo prefix, or an inference-profile ARN).
    let uses_profile = |p: &str| {
        ctx.model == p
            || ctx.model.ends_with(&format!("/{p}"))
            || ctx.model.contains("inference-profile/")
    };
    let profile = match &ctx.profile_model {
        Some(p) if !uses_profile(p) => format!(" (`model: {}/{p}`)", ctx.prefix),
        _ => String::new(),
    };
    Diagnosis::new(
        "AWS-15",
        format!("Bedrock throttled {} in {} (\"{message}\").", ctx.who, ctx.region()),
        format!(
            "The gateway retries with backoff, then falls back to the alias's next deployment. \
             For more headroom request a quota increase (Service Quotas → Amazon Bedrock) or \
             use a cross-region inference profile{profile} that spreads load over regions."
        ),
    )
}

/// AWS-16.
pub(super) fn transient(
    ctx: &AwsContext,
    code: &str,
    status: Option<u16>,
    message: &str,
) -> Diagnosis {
    let status = status.map(|s| format!(", HTTP {s}")).unwrap_or_default();
    Diagnosis::new(
        "AWS-16",
        format!("Bedrock failed with a transient {code}{status} for {} (\"{message}\").", ctx.who),
        "Transient: the gateway retries, then falls back to the alias's next deployment. If it \
         persists, add a deployment in another region or on the Anthropic API.",
    )
}

/// AWS-17.
pub(super) fn context_window(ctx: &AwsContext, message: &str) -> Diagnosis {
    let numbers: Vec<u64> =
        message.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect();
    let detail = match numbers.as_slice() {
        [.., n, m] if message.contains("prompt is too long") => {
            format!(" The prompt has {n} tokens; the model allows {m}.")
        }
        _ => String::new(),
    };
    Diagnosis::new(
        "AWS-17",
        format!("The request does not fit the context window of {}.{detail}", ctx.who),
        "Shorten the conversation or lower max_tokens, or configure `context_window_fallbacks` \
         for the alias to a model with a larger window.",
    )
}

/// AWS-04: nothing loaded, or a source that is configured wrongly.
pub(super) fn missing(ctx: &AwsContext, failure: CredentialFailure, detail: &str) -> Diagnosis {
    let files = if ctx.files.is_empty() {
        "~/.aws/config, ~/.aws/credentials".to_owned()
    } else {
        ctx.files.join(", ")
    };
    let p = ctx.profile();
    let cause = match failure {
        CredentialFailure::NotLoaded => format!(
            "No AWS credentials were found for {}. Tried: environment variables \
             (AWS_ACCESS_KEY_ID), profile `{p}` in {files}, SSO, web identity \
             (AWS_WEB_IDENTITY_TOKEN_FILE), the container endpoint and instance metadata ({detail}).",
            ctx.who
        ),
        _ => format!(
            "The AWS credentials of {} ({}) cannot be loaded: {detail}.",
            ctx.who,
            ctx.creds()
        ),
    };
    Diagnosis::new(
        "AWS-04",
        cause,
        format!(
            "Provide credentials one of three ways: name a profile (`aws_profile_name: {p}` or \
             AWS_PROFILE) and run `aws sso login --profile {p}`; set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN for temporary keys); or set a Bedrock \
             API key in AWS_BEARER_TOKEN_BEDROCK (or `api_key` on the deployment)."
        ),
    )
}

/// AWS-04 for a profile the config names but no file defines.
pub(super) fn undefined_profile(
    ctx: &AwsContext,
    name: &str,
    source: &str,
    u: &UndefinedProfile,
) -> Diagnosis {
    // `source` ends with "; no file defines it", which the cause says in full.
    let source = source.split("; no file defines it").next().unwrap_or(source);
    let defined = match u.defined.as_slice() {
        [] => " They define no profile at all.".to_owned(),
        names => format!(" They define: {}.", names.join(", ")),
    };
    let section = if name == "default" { "default".to_owned() } else { format!("profile {name}") };
    Diagnosis::new(
        "AWS-04",
        format!(
            "Profile `{name}` ({source}) used by {} is not defined in any file the gateway \
             read: {}.{defined}",
            ctx.who,
            u.searched.join(", ")
        ),
        format!(
            "Create the profile: run `aws configure sso --profile {name}` (IAM Identity Center), \
             or add a `[{section}]` section to {} with its `region` and credentials \
             (`sso_session`, `credential_process`, or `role_arn` with `source_profile`), or a \
             `[{name}]` section with `aws_access_key_id` and `aws_secret_access_key` to {}. Or \
             set `aws_profile_name` to a profile that exists; if your files live elsewhere, \
             point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at them (an env file counts). \
             Then reload the config (SIGHUP or `POST /config/reload`) or restart the gateway.",
            u.config_file, u.credentials_file
        ),
    )
}

/// `20180920T174101Z` → seconds since the epoch.
pub(super) fn compact_time(word: &str) -> Option<i64> {
    let b = word.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| word.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

pub(super) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

/// Up to three known ids closest to `model` by edit distance.
fn close_matches(model: &str) -> Vec<&'static str> {
    let limit = (model.len() / 4).max(3);
    let mut scored: Vec<(usize, &'static str)> = KNOWN_MODELS
        .iter()
        .filter(|known| **known != model)
        .map(|known| (edit_distance(model, known), *known))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    scored.sort_by_key(|(distance, _)| *distance);
    scored.into_iter().take(3).map(|(_, m)| m).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
