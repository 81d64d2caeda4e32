//! Emulates STS (`POST /`, the Query protocol: a form-encoded body, XML answers):
//! `GetCallerIdentity`, `AssumeRole` and `AssumeRoleWithWebIdentity`, with STS's own
//! `<ErrorResponse>` codes (`InvalidClientTokenId`, `SignatureDoesNotMatch`, `ExpiredToken`, …).
//! Issued credentials join the registry, so the next Bedrock call can sign with them.

use std::time::{Duration, SystemTime};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use axum::body::Body as HttpBody;
use axum::response::Response;

use super::errors::{EXPIRED_TOKEN, INVALID_TOKEN, respond};
use super::sigv4::{self, Failure};
use super::{AwsCall, AwsIdentity, AwsState};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const MIN_DURATION: u64 = 900;

/// An STS error: status, `<Type>`, `<Code>`, `<Message>`.
struct StsError {
    status: u16,
    kind: &'static str,
    code: &'static str,
    message: String,
}

fn sender(status: u16, code: &'static str, message: impl Into<String>) -> StsError {
    StsError { status, kind: "Sender", code, message: message.into() }
}

/// Answers one STS call.
pub(crate) fn route(state: &AwsState, call: &AwsCall<'_>) -> Response {
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(call.query.unwrap_or_default().as_bytes()).into_owned().collect();
    params.extend(form_urlencoded::parse(call.body).into_owned());
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let result = match param("Action") {
        None => Err(sender(400, "MissingAction", "Missing Action")),
        Some("AssumeRoleWithWebIdentity") => web_identity(state, &param),
        Some(action @ ("GetCallerIdentity" | "AssumeRole")) => {
            match sigv4::verify(state, call, "sts") {
                Err(failure) => Err(auth_error(failure)),
                Ok(verified) if action == "AssumeRole" => {
                    assume_role(state, &verified.identity, &param)
                }
                Ok(verified) => Ok(caller_identity(&verified.identity)),
            }
        }
        Some(other) => Err(sender(
            400,
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    };
    match result {
        Ok((action, inner)) => {
            let request_id = call.request_id();
            let xml = format!(
                "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>\n{inner}  \
                 </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  \
                 </ResponseMetadata>\n</{action}Response>\n"
            );
            respond(call, 200, "text/xml", &[], HttpBody::from(xml))
        }
        Err(error) => {
            let xml = format!(
                "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>{}</Type>\n    \
                 <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
                 <RequestId>{}</RequestId>\n</ErrorResponse>\n",
                error.kind,
                error.code,
                escape(&error.message),
                call.request_id()
            );
            respond(call, error.status, "text/xml", &[], HttpBody::from(xml))
        }
    }
}

/// STS's names for the ways a signature fails.
fn auth_error(failure: Failure) -> StsError {
    match failure {
        Failure::Missing => {
            sender(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        }
        Failure::Incomplete(message) => sender(400, "IncompleteSignature", message),
        Failure::UnknownKey => sender(403, "InvalidClientTokenId", INVALID_TOKEN),
        Failure::Expired => sender(403, "ExpiredToken", EXPIRED_TOKEN),
        Failure::Signature(message) => sender(403, "SignatureDoesNotMatch", message),
    }
}

type Answer = Result<(&'static str, String), StsError>;

fn caller_identity(identity: &AwsIdentity) -> (&'static str, String) {
    let inner = format!(
        "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
        escape(&identity.arn),
        escape(&identity.user_id),
        escape(&identity.account)
    );
    ("GetCallerIdentity", inner)
}

/// The parameters every assume-role action needs, with STS's validation messages.
fn role_params<'a>(
    param: &impl Fn(&str) -> Option<&'a str>,
    extra: &[(&str, &str)],
) -> Result<(&'a str, &'a str, Option<Duration>), StsError> {
    let mut problems = Vec::new();
    for (name, member) in
        [("RoleArn", "roleArn"), ("RoleSessionName", "roleSessionName")].iter().chain(extra)
    {
        if param(name).is_none() {
            problems.push(format!(
                "Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ));
        }
    }
    let duration = param("DurationSeconds").map(|text| text.parse::<u64>().unwrap_or(0));
    if let Some(seconds) = duration.filter(|&s| s < MIN_DURATION) {
        problems.push(format!(
            "Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must \
             have value greater than or equal to {MIN_DURATION}"
        ));
    }
    if !problems.is_empty() {
        let count = match problems.len() {
            1 => "1 validation error detected: ".to_owned(),
            n => format!("{n} validation errors detected: "),
        };
        return Err(sender(400, "ValidationError", count + &problems.join("; ")));
    }
    let (Some(role), Some(session)) = (param("RoleArn"), param("RoleSessionName")) else {
        return Err(sender(400, "ValidationError", "RoleArn and RoleSessionName are required"));
    };
    Ok((role, session, duration.map(Duration::from_secs)))
}

/// `arn:aws:iam::ACCOUNT:role/PATH/NAME` → `(ACCOUNT, NAME)`.
fn parse_role(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
    (!account.is_empty() && !name.is_empty()).then_some((account, name))
}

fn assume_role<'a>(
    state: &AwsState,
    caller: &AwsIdentity,
    param: &impl Fn(&str) -> Option<&'a str>,
) -> Answer {
    let (role_arn, session, duration) = role_params(param, &[])?;
    let mut registry = state.registry();
    let allowed = match registry.roles.get(role_arn) {
        Some(Some(external_id)) => param("ExternalId") == Some(external_id.as_str()),
        Some(None) => true,
        None => registry.roles.is_empty(),
    };
    let Some((account, role)) = parse_role(role_arn).filter(|_| allowed) else {
        let message = format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.arn
        );
        return Err(sender(403, "AccessDenied", message));
    };
    let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/{session}");
    let issued = registry.issue(arn, duration);
    Ok(("AssumeRole", credentials_xml(&issued)))
}

fn web_identity<'a>(state: &AwsState, param: &impl Fn(&str) -> Option<&'a str>) -> Answer {
    let (role_arn, session, duration) =
        role_params(param, &[("WebIdentityToken", "webIdentityToken")])?;
    let mut registry = state.registry();
    let token = param("WebIdentityToken").unwrap_or_default();
    if !registry.web_identity_tokens.contains(token) {
        let message = "The ID Token provided is not a valid JWT. (You may see this error if you \
                       sent an Access Token)";
        return Err(sender(400, "InvalidIdentityToken", message));
    }
    let Some((account, role)) = parse_role(role_arn) else {
        let message = "Not authorized to perform sts:AssumeRoleWithWebIdentity";
        return Err(sender(403, "AccessDenied", message));
    };
    let arn = format!("arn:aws:sts::{account}:assumed-role/{role}/{session}");
    let issued = registry.issue(arn, duration);
    let extra = "    <SubjectFromWebIdentityToken>mock-subject</SubjectFromWebIdentityToken>\n    \
                 <Audience>sts.amazonaws.com</Audience>\n    <Provider>mock-oidc</Provider>\n";
    Ok(("AssumeRoleWithWebIdentity", credentials_xml(&issued) + extra))
}

/// `<AssumedRoleUser>` and `<Credentials>` of freshly issued credentials.
fn credentials_xml(identity: &AwsIdentity) -> String {
    format!(
        "    <AssumedRoleUser>\n      <Arn>{}</Arn>\n      <AssumedRoleId>{}</AssumedRoleId>\n    \
         </AssumedRoleUser>\n    <Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      \
         <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      \
         <Expiration>{}</Expiration>\n    </Credentials>\n",
        escape(&identity.arn),
        escape(&identity.user_id),
        identity.access_key_id,
        escape(&identity.secret_access_key),
        escape(identity.session_token.as_deref().unwrap_or_default()),
        iso8601(identity.expires_at.unwrap_or(SystemTime::UNIX_EPOCH)),
    )
}

/// `2019-11-09T13:34:41Z`, as STS writes `Expiration`.
pub(crate) fn iso8601(time: SystemTime) -> String {
    DateTime::from_secs(DateTime::from(time).secs()).fmt(Format::DateTime).unwrap_or_default()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_with_paths() {
        assert_eq!(
            parse_role("arn:aws:iam::123456789012:role/Bedrock"),
            Some(("123456789012", "Bedrock"))
        );
        assert_eq!(parse_role("arn:aws:iam::1:role/team/Bedrock"), Some(("1", "Bedrock")));
        assert_eq!(parse_role("arn:aws:iam::1:user/Bedrock"), None);
    }

    #[test]
    fn validation_lists_every_problem() {
        let params = [("DurationSeconds", "60")];
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let Err(error) = role_params(&param, &[]) else { panic!("accepted no role") };
        assert_eq!(error.code, "ValidationError");
        assert!(error.message.starts_with("3 validation errors detected: Value null at 'roleArn'"));
        assert!(error.message.contains("Value '60' at 'durationSeconds'"));
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(escape("a&b<c>'\""), "a&amp;b&lt;c&gt;&apos;&quot;");
        assert_eq!(
            iso8601(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400)),
            "1970-01-02T00:00:00Z"
        );
    }
}
