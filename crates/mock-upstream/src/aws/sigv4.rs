//! Verifies a SigV4-signed request the way AWS does: the signature is recomputed with
//! `aws-sigv4` from what was received (method, path as sent, query, the signed headers, body)
//! and the registered secret, then compared. It never hand-rolls the canonical request or HMAC,
//! and it says why a request fails without choosing the protocol's error shape.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::{AwsCall, AwsIdentity, AwsState};

/// How far `x-amz-date` may be from the mock's clock.
const SKEW: Duration = Duration::from_secs(5 * 60);

/// A request that passed: who signed it, and the region it was signed for.
#[derive(Debug)]
pub(crate) struct Verified {
    pub identity: AwsIdentity,
    pub region: String,
}

/// Why a request was not accepted; each protocol names these in its own words.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No `Authorization` header at all.
    Missing,
    /// An `Authorization` header without the parts SigV4 needs; the message says which.
    Incomplete(String),
    /// The access key id is not known, or the session token is missing or not its own.
    UnknownKey,
    /// The credentials are past their expiry.
    Expired,
    /// The signature, its scope or its date is wrong; the message is AWS's.
    Signature(String),
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Checks the call's signature for `service` (`bedrock`, `sts`) against the registry.
pub(crate) fn verify(
    state: &AwsState,
    call: &AwsCall<'_>,
    service: &str,
) -> Result<Verified, Failure> {
    let Some(header) = call.header("authorization") else {
        return Err(Failure::Missing);
    };
    let auth = parse(header, call.header("x-amz-date").is_some())?;
    let Some(identity) = state.registry().identities.get(auth.key_id).cloned() else {
        return Err(Failure::UnknownKey);
    };
    let sent_token = call.header("x-amz-security-token");
    if sent_token != identity.session_token.as_deref() {
        return Err(Failure::UnknownKey);
    }
    let now = SystemTime::now();
    if identity.expired(now) {
        return Err(Failure::Expired);
    }
    if auth.service != service {
        let message = format!("Credential should be scoped to correct service: '{service}'. ");
        return Err(Failure::Signature(message));
    }
    let amz_date = call.header("x-amz-date").unwrap_or_default();
    let Some(time) = parse_amz_date(amz_date) else {
        let message = format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        );
        return Err(Failure::Signature(message));
    };
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        let message = format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..amz_date.len().min(8)],
        );
        return Err(Failure::Signature(message));
    }
    check_skew(time, now)?;
    let expected = signature(call, &auth, &identity, time)
        .ok_or_else(|| Failure::Signature(super::errors::SIGNATURE_MISMATCH.to_owned()))?;
    if expected != auth.signature {
        return Err(Failure::Signature(super::errors::SIGNATURE_MISMATCH.to_owned()));
    }
    Ok(Verified { identity, region: auth.region.to_owned() })
}

fn parse(header: &str, has_date: bool) -> Result<Authorization<'_>, Failure> {
    let fields = header.strip_prefix("AWS4-HMAC-SHA256 ").unwrap_or_default();
    let field = |name: &str| {
        fields.split(',').map(str::trim).find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
    };
    let (credential, signed, signature) =
        (field("Credential"), field("SignedHeaders"), field("Signature"));
    let mut missing = Vec::new();
    for (name, value) in
        [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed)]
    {
        if value.is_none() {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !has_date {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .to_owned(),
        );
    }
    let scope: Vec<&str> = credential.unwrap_or_default().split('/').collect();
    match (&scope[..], signed, signature) {
        ([key_id, date, region, service, "aws4_request"], Some(signed), Some(signature))
            if missing.is_empty() =>
        {
            Ok(Authorization {
                key_id,
                date,
                region,
                service,
                signed_headers: signed.split(';').collect(),
                signature,
            })
        }
        _ if missing.is_empty() => Err(Failure::Signature(format!(
            "Credential should be scoped to a valid region, service and terminator: '{}'. ",
            credential.unwrap_or_default()
        ))),
        _ => Err(Failure::Incomplete(format!("{} Authorization={header}", missing.join(" ")))),
    }
}

/// `20240101T000000Z` → that instant.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits =
        |range: std::ops::Range<usize>| b.get(range).filter(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 16
        || b[8] != b'T'
        || b[15] != b'Z'
        || digits(0..8).is_none()
        || digits(9..15).is_none()
    {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    let time = DateTime::from_str(&rfc3339, Format::DateTime).ok()?;
    SystemTime::try_from(time).ok()
}

/// That instant as `20240101T000000Z` (whole seconds).
pub(crate) fn amz_date(time: SystemTime) -> String {
    let seconds = DateTime::from(time).secs();
    let text = DateTime::from_secs(seconds).fmt(Format::DateTime).unwrap_or_default();
    text.chars().filter(|c| !matches!(c, '-' | ':')).collect()
}

/// AWS's ±5 minute window, with its messages.
fn check_skew(time: SystemTime, now: SystemTime) -> Result<(), Failure> {
    let (sent, now_text) = (amz_date(time), amz_date(now));
    if time + SKEW < now {
        let floor = amz_date(now - SKEW);
        let message =
            format!("Signature expired: {sent} is now earlier than {floor} ({now_text} - 5 min.)");
        return Err(Failure::Signature(message));
    }
    if time > now + SKEW {
        let ceiling = amz_date(now + SKEW);
        let message = format!(
            "Signature not yet current: {sent} is still later than {ceiling} ({now_text} + 5 min.)"
        );
        return Err(Failure::Signature(message));
    }
    Ok(())
}

/// The signature AWS computes for the call with the identity's secret: the headers the client
/// listed as signed (and only those), the path as received (re-encoded by the signer, as AWS
/// does for every service but S3), the query and the body's SHA-256.
fn signature(
    call: &AwsCall<'_>,
    auth: &Authorization<'_>,
    identity: &AwsIdentity,
    time: SystemTime,
) -> Option<String> {
    let token_signed = auth.signed_headers.contains(&"x-amz-security-token");
    let credentials = Credentials::new(
        &identity.access_key_id,
        &identity.secret_access_key,
        identity.session_token.clone(),
        None,
        "mock-upstream",
    );
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    // Sign exactly the client's list: the defaults would drop `user-agent` and friends.
    settings.excluded_headers = None;
    settings.session_token_mode =
        if token_signed { SessionTokenMode::Include } else { SessionTokenMode::Exclude };
    let params = SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(time)
        .settings(settings)
        .build()
        .ok()?;
    let headers = auth.signed_headers.iter().flat_map(|&name| {
        let values = call.headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
        values.map(move |value| (name, value))
    });
    let host = call.header("host").unwrap_or("localhost");
    let uri = match call.query {
        Some(query) => format!("http://{host}{}?{query}", call.path),
        None => format!("http://{host}{}", call.path),
    };
    let request =
        SignableRequest::new(call.method, uri, headers, SignableBody::Bytes(call.body)).ok()?;
    let output = sign(request, &params.into()).ok()?;
    Some(output.signature().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        let time = parse_amz_date("20180920T174101Z");
        assert!(time.is_some());
        assert_eq!(time.map(amz_date).as_deref(), Some("20180920T174101Z"));
        assert_eq!(parse_amz_date("2018-09-20T17:41:01Z"), None);
        assert_eq!(parse_amz_date("20180920T17410XZ"), None);
    }

    #[test]
    fn skew_messages_are_aws_own() {
        let now = parse_amz_date("20180920T175004Z").unwrap_or(SystemTime::UNIX_EPOCH);
        let early = parse_amz_date("20180920T174101Z").unwrap_or(SystemTime::UNIX_EPOCH);
        assert_eq!(
            check_skew(early, now),
            Err(Failure::Signature(
                "Signature expired: 20180920T174101Z is now earlier than 20180920T174504Z \
                 (20180920T175004Z - 5 min.)"
                    .into()
            ))
        );
        assert_eq!(check_skew(now - Duration::from_secs(299), now), Ok(()));
    }

    #[test]
    fn incomplete_headers_name_what_is_missing() {
        let Err(Failure::Incomplete(message)) = parse("Bearer abc", false) else {
            panic!("accepted a bearer header as SigV4")
        };
        assert!(message.starts_with("Authorization header requires 'Credential' parameter."));
        assert!(message.ends_with("Authorization=Bearer abc"), "{message}");
    }
}
