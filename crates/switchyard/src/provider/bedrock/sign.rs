//! How a Bedrock request is authorised: a Bedrock API key as `Authorization: Bearer` (and
//! then no AWS credential is ever resolved), or a SigV4 signature over exactly the headers
//! that must be signed — host, x-amz-date, x-amz-security-token, content-type — never
//! hop-by-hop or forwarded headers, which a proxy may change.
//!
//! The path is signed as sent (`%3A` stays `%3A`); aws-sigv4 encodes it once more for the
//! canonical request, as AWS does on its side.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue};

/// SigV4's signing name for Bedrock Runtime (not `bedrock-runtime`).
pub const SIGNING_NAME: &str = "bedrock";

/// The headers SigV4 adds (`authorization`, `x-amz-date`, `x-amz-security-token`), for a
/// POST of `body` to `url` whose signed headers are `signed` (lower-case names).
pub fn sigv4(
    credentials: &Credentials,
    region: &str,
    url: &str,
    signed: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    sigv4_method("POST", credentials, region, url, signed, body, time)
}

/// [`sigv4`] for any method (a pass-through `GET`).
pub fn sigv4_method(
    method: &str,
    credentials: &Credentials,
    region: &str,
    url: &str,
    signed: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request =
        SignableRequest::new(method, url, signed.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::from_str(h.value()).map_err(|e| e.to_string())?;
            value.set_sensitive(h.sensitive() || name == http::header::AUTHORIZATION);
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn header<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn only_the_needed_headers_are_signed_and_the_token_travels() {
        let creds = Credentials::new(
            "ASIAEXAMPLE0000000",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("FwoGZXIvYXdzEXAMPLE".into()),
            None,
            "test",
        );
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-x-v1%3A0/invoke";
        let headers =
            sigv4(&creds, "us-east-1", url, &[("content-type", "application/json")], b"{}", time)
                .unwrap();
        assert_eq!(header(&headers, "x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(header(&headers, "x-amz-security-token"), Some("FwoGZXIvYXdzEXAMPLE"));
        let auth = header(&headers, "authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE0000000/20231114/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{auth}"
        );
        assert!(headers.iter().all(|(n, _)| n != "x-amz-content-sha256"));
        // The same request signed again at the same time gives the same signature, and a
        // different path (the `:` not encoded) a different one: the path is signed as sent.
        let again =
            sigv4(&creds, "us-east-1", url, &[("content-type", "application/json")], b"{}", time)
                .unwrap();
        assert_eq!(header(&again, "authorization"), Some(auth));
        let raw = url.replace("%3A", ":");
        let other =
            sigv4(&creds, "us-east-1", &raw, &[("content-type", "application/json")], b"{}", time)
                .unwrap();
        assert_ne!(header(&other, "authorization"), Some(auth));
    }
}
