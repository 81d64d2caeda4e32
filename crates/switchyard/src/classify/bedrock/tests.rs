//! One test per AWS catalog row, fed with the literal payloads AWS sends.

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderMap;

use super::*;

const MODEL: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

fn ctx(auth: AwsAuth) -> AwsContext {
    AwsContext {
        who: format!("the deployment of `balanced` (bedrock/{MODEL}, us-east-1)"),
        prefix: "bedrock".into(),
        model: MODEL.into(),
        foundation: Some(MODEL.into()),
        region: Some("us-east-1".into()),
        endpoint: "https://bedrock-runtime.us-east-1.amazonaws.com".into(),
        auth,
        role: None,
        files: vec!["/home/u/.aws/config".into(), "/home/u/.aws/credentials".into()],
        suggested_profile: Some("cc".into()),
        profile_model: Some(format!("us.{MODEL}")),
        policy_template: format!(
            "{{\"Resource\": [\"arn:aws:bedrock:us-east-1:{{account}}:inference-profile/us.{MODEL}\"]}}"
        ),
        anthropic_model: Some("claude-sonnet-4-5-20250929".into()),
    }
}

fn env_keys() -> AwsContext {
    ctx(AwsAuth::Keys {
        key_prefix: "ASIA…".into(),
        source: "AWS_ACCESS_KEY_ID from /home/u/.backlog-toolkit-env:3".into(),
        session_token: false,
    })
}

fn sso_profile() -> AwsContext {
    ctx(AwsAuth::Profile {
        name: "cc".into(),
        source: "aws_profile_name in c.yaml:7:7, defined in /home/u/.aws/config".into(),
        sso: Some(("corp".into(), "https://corp.awsapps.com/start".into())),
        process: false,
        undefined: None,
    })
}

/// An HTTP error as Bedrock sends it: `x-amzn-ErrorType` with its namespace, a request id,
/// `{"message": …}`.
fn http(c: &AwsContext, status: u16, code: &str, message: &str) -> UpstreamError {
    let mut h = HeaderMap::new();
    let error_type = format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    h.insert("x-amzn-errortype", error_type.parse().unwrap());
    h.insert("x-amzn-requestid", "7c2e1d0a-0000-4000-8000-000000000001".parse().unwrap());
    let body = serde_json::json!({ "message": message }).to_string();
    bedrock_http_error(c, None, status, &h, body.as_bytes())
}

fn text(e: &UpstreamError) -> String {
    let d = e.diagnosis.as_ref().unwrap();
    format!("{} Fix: {}", d.cause, d.remedy)
}

fn id(e: &UpstreamError) -> &'static str {
    e.diagnosis.as_ref().unwrap().id
}

#[test]
fn aws01_unrecognised_keys_are_not_a_missing_permission() {
    let e = http(
        &env_keys(),
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsInvalid, "AWS-01"));
    assert_eq!(e.provider_code.as_deref(), Some("UnrecognizedClientException"));
    assert_eq!(e.status, Some(403));
    let t = text(&e);
    for needle in [
        "AWS did not recognise the credentials",
        "this is not a missing permission",
        "ASIA…",
        "AWS_ACCESS_KEY_ID from /home/u/.backlog-toolkit-env:3",
        "no session token",
        "stale temporary credentials",
        "`aws_profile_name: cc`",
        "AWS_PROFILE=cc",
        "aws sso login --profile cc",
        "aws sts get-caller-identity --profile cc",
        "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0, us-east-1",
        "AWS request id 7c2e1d0a",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in {t}");
    }
}

#[test]
fn aws02_expired_says_when_and_how_to_refresh() {
    let used = UsedKey {
        key_prefix: "ASIA…".into(),
        expires_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
    };
    let body = br#"{"message":"The security token included in the request is expired"}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "x-amzn-errortype",
        "ExpiredTokenException:http://internal.amazon.com/coral/com.amazon.coral.service/"
            .parse()
            .unwrap(),
    );
    let e = bedrock_http_error(&sso_profile(), Some(&used), 403, &h, body);
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsExpired, "AWS-02"));
    let t = text(&e);
    assert!(t.contains("expired at 2023-11-14T22:13:20Z"), "{t}");
    assert!(
        t.contains("aws sso login --profile cc` (or `aws sso login --sso-session corp`)"),
        "{t}"
    );
    assert!(t.contains("without a restart"), "{t}");
    let e = http(
        &env_keys(),
        403,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    );
    assert!(text(&e).contains("cannot refresh"), "{}", text(&e));
}

#[test]
fn aws03_an_expired_or_missing_sso_cache_needs_a_login() {
    for detail in [
        "an error occurred while loading credentials: the SSO token has expired and cannot be refreshed",
        "an error occurred while loading credentials: failed to read `/home/u/.aws/sso/cache/dace00cba5f8355ec9d274ceb2bcebdfbeed0e12.json`: No such file or directory (os error 2)",
        "an error occurred while loading credentials: service error: UnauthorizedException: Session token not found or invalid",
    ] {
        let e = bedrock_credentials_error(&sso_profile(), CredentialFailure::Provider, detail);
        assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsExpired, "AWS-03"), "{detail}");
        let t = text(&e);
        assert!(t.contains("SSO session `corp` (https://corp.awsapps.com/start)"), "{t}");
        assert!(t.contains("aws sso login --profile cc"), "{t}");
    }
}

#[test]
fn aws04_nothing_loaded_lists_the_sources_and_three_ways() {
    let e = bedrock_credentials_error(
        &ctx(AwsAuth::DefaultChain),
        CredentialFailure::NotLoaded,
        "the credential provider was not enabled: no providers in chain provided credentials",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsMissing, "AWS-04"));
    let t = text(&e);
    for needle in [
        "environment variables",
        "profile `cc` in /home/u/.aws/config",
        "SSO",
        "web identity",
        "container",
        "instance metadata",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in {t}");
    }
    let e = bedrock_credentials_error(
        &sso_profile(),
        CredentialFailure::Provider,
        "an error occurred while loading credentials: Error retrieving credentials: external process exited with code exit status: 1. Stderr: login required",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsMissing, "AWS-04"));
    assert!(text(&e).contains("credential_process"), "{}", text(&e));
    assert!(text(&e).contains("login required"));
}

#[test]
fn aws05_missing_permission_names_identity_action_resource_permission_set_and_policy() {
    let message = "User: arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeAccess_0123456789abcdef/dev@example.com is not authorized to perform: bedrock:InvokeModelWithResponseStream on resource: arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0 because no identity-based policy allows the bedrock:InvokeModelWithResponseStream action";
    let e = http(&sso_profile(), 403, "AccessDeniedException", message);
    assert_eq!((e.kind, id(&e)), (ErrorKind::PermissionDenied, "AWS-05"));
    let t = text(&e);
    for needle in [
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeAccess_0123456789abcdef/dev@example.com may not call bedrock:InvokeModelWithResponseStream on arn:aws:bedrock:us-east-1::foundation-model/",
        "permission set `ClaudeAccess`",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.",
        "Anthropic API",
        "model: anthropic/claude-sonnet-4-5-20250929",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in {t}");
    }
}

#[test]
fn aws06_explicit_deny_says_a_policy_will_not_help() {
    let message = "User: arn:aws:sts::123456789012:assumed-role/Dev/me is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:::foundation-model/anthropic.claude-opus-4-6-v1 with an explicit deny in a service control policy";
    let mut c = sso_profile();
    c.model = format!("global.{MODEL}");
    let e = http(&c, 403, "AccessDeniedException", message);
    assert_eq!((e.kind, id(&e)), (ErrorKind::PermissionDenied, "AWS-06"));
    let t = text(&e);
    assert!(t.contains("explicit deny in a service control policy"), "{t}");
    assert!(t.contains("adding a policy will not help"), "{t}");
    assert!(t.contains(&format!("model: bedrock/us.{MODEL}")), "{t}");
}

#[test]
fn aws07_and_aws08_model_access() {
    let e = http(
        &sso_profile(),
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::ModelAccess, "AWS-07"));
    assert!(text(&e).contains(&format!(
        "Enable it in the Bedrock console in us-east-1 (Model access → {MODEL}"
    )));
    let e = http(
        &sso_profile(),
        403,
        "AccessDeniedException",
        "Model access is denied due to IAM user or service role is not authorized to perform the required AWS Marketplace actions (aws-marketplace:ViewSubscriptions, aws-marketplace:Subscribe) to enable access to this model.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::ModelAccess, "AWS-08"));
    assert!(text(&e).contains("aws-marketplace:Subscribe"), "{}", text(&e));
}

#[test]
fn aws09_on_demand_gives_the_exact_config_line() {
    let message = format!(
        "Invocation of model ID {MODEL} with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model."
    );
    let e = http(&sso_profile(), 400, "ValidationException", &message);
    assert_eq!((e.kind, id(&e)), (ErrorKind::ModelNeedsProfile, "AWS-09"));
    let t = text(&e);
    assert!(t.contains(&format!("`model: bedrock/us.{MODEL}`")), "{t}");
    assert!(t.contains(&format!("global.{MODEL}")), "{t}");
}

#[test]
fn aws10_invalid_id_suggests_close_matches() {
    let mut c = sso_profile();
    c.model = "us.anthropic.claude-sonet-4-5-20250929-v1:0".into();
    c.foundation = Some("anthropic.claude-sonet-4-5-20250929-v1:0".into());
    let e = http(&c, 400, "ValidationException", "The provided model identifier is invalid.");
    assert_eq!((e.kind, id(&e)), (ErrorKind::ModelNotFound, "AWS-10"));
    let t = text(&e);
    assert!(t.contains(&format!("Close matches: us.{MODEL}")), "{t}");
    assert!(t.contains(&format!("`model: bedrock/us.{MODEL}`")), "{t}");
}

#[test]
fn aws11_wrong_secret() {
    let e = http(
        &env_keys(),
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsInvalid, "AWS-11"));
    assert!(text(&e).contains("does not belong to the access key ASIA…"), "{}", text(&e));
}

#[test]
fn aws12_clock_skew_says_by_how_much() {
    let e = http(
        &env_keys(),
        403,
        "InvalidSignatureException",
        "Signature expired: 20180920T174101Z is now earlier than 20180920T174504Z (20180920T175004Z - 5 min.)",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::ClockSkew, "AWS-12"));
    let t = text(&e);
    assert!(t.contains("behind by about 9 minutes"), "{t}");
    assert!(t.contains("NTP"), "{t}");
    let e = http(
        &env_keys(),
        403,
        "InvalidSignatureException",
        "Signature not yet current: 20180920T181000Z is still later than 20180920T175504Z (20180920T175004Z + 5 min.)",
    );
    assert!(text(&e).contains("ahead by about 20 minutes"), "{}", text(&e));
}

#[test]
fn aws13_bad_bedrock_api_key() {
    let c = ctx(AwsAuth::BearerKey {
        prefix: "not-…".into(),
        source: "AWS_BEARER_TOKEN_BEDROCK from the process environment".into(),
    });
    let body = br#"{"Message":"Invalid API Key format: Must start with pre-defined prefix"}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "x-amzn-errortype",
        "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"
            .parse()
            .unwrap(),
    );
    let e = bedrock_http_error(&c, None, 403, &h, body);
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsInvalid, "AWS-13"));
    assert_eq!(e.message, "Invalid API Key format: Must start with pre-defined prefix");
    let t = text(&e);
    assert!(t.contains("AWS_BEARER_TOKEN_BEDROCK"), "{t}");
    assert!(t.contains("region"), "{t}");
}

#[test]
fn aws14_no_region() {
    let mut c = sso_profile();
    c.region = None;
    let e = bedrock_no_region(&c);
    assert_eq!((e.kind, id(&e)), (ErrorKind::Configuration, "AWS-14"));
    let t = text(&e);
    assert!(t.contains("`region` of profile `cc`"), "{t}");
    assert!(t.contains("aws_region_name: us-east-1"), "{t}");
}

#[test]
fn aws15_and_aws16_transient_failures() {
    let e = http(
        &sso_profile(),
        429,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::RateLimited, "AWS-15"));
    assert!(text(&e).contains("quota increase"), "{}", text(&e));
    for (status, code, kind) in [
        (500, "InternalServerException", ErrorKind::UpstreamUnavailable),
        (503, "ServiceUnavailableException", ErrorKind::UpstreamUnavailable),
        (429, "ModelNotReadyException", ErrorKind::UpstreamUnavailable),
        (424, "ModelErrorException", ErrorKind::UpstreamUnavailable),
        (424, "ModelStreamErrorException", ErrorKind::UpstreamUnavailable),
        (408, "ModelTimeoutException", ErrorKind::Timeout),
    ] {
        let e = http(&sso_profile(), status, code, "x");
        assert_eq!((e.kind, id(&e)), (kind, "AWS-16"), "{code}");
    }
}

#[test]
fn aws17_context_window_reads_both_numbers() {
    let e = http(
        &sso_profile(),
        400,
        "ValidationException",
        "The model returned the following errors: prompt is too long: 903884 tokens > 200000 maximum",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::ContextWindow, "AWS-17"));
    assert!(
        text(&e).contains("The prompt has 903884 tokens; the model allows 200000."),
        "{}",
        text(&e)
    );
    let e =
        http(&sso_profile(), 400, "ValidationException", "Input is too long for requested model.");
    assert_eq!(e.kind, ErrorKind::ContextWindow);
}

#[test]
fn aws18_exception_frames_are_classified_by_type() {
    let e = bedrock_stream_exception(
        &sso_profile(),
        "throttlingException",
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::RateLimited, "AWS-18"));
    assert_eq!(e.provider_code.as_deref(), Some("ThrottlingException"));
    assert!(text(&e).contains("in the middle of the stream"), "{}", text(&e));
    let e = bedrock_stream_exception(&sso_profile(), "modelStreamErrorException", br#"{"message":"An error occurred while streaming the response.","originalStatusCode":500}"#);
    assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
    let e = bedrock_stream_exception(
        &sso_profile(),
        "validationException",
        br#"{"message":"prompt is too long: 300000 tokens > 200000 maximum"}"#,
    );
    assert_eq!(e.kind, ErrorKind::ContextWindow);
}

#[test]
fn other_validation_errors_are_invalid_requests_verbatim_and_the_header_wins() {
    let e = http(
        &sso_profile(),
        400,
        "ValidationException",
        "Malformed input request: #: extraneous key [stream_options] is not permitted, please reformat your input and try again.",
    );
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(e.message.contains("extraneous key"));
    // No header: `__type` in the body, with its namespace stripped.
    let body = br#"{"__type":"com.amazon.bedrock#ThrottlingException","message":"slow down"}"#;
    let e = bedrock_http_error(&sso_profile(), None, 429, &HeaderMap::new(), body);
    assert_eq!(e.provider_code.as_deref(), Some("ThrottlingException"));
    assert_eq!(e.kind, ErrorKind::RateLimited);
    let e = bedrock_http_error(
        &sso_profile(),
        None,
        502,
        &HeaderMap::new(),
        b"<html>bad gateway</html>",
    );
    assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
    assert_eq!(e.message, "bad gateway", "markup is never quoted");
}

#[test]
fn assume_role_failures_from_sts_are_classified_like_bedrock_ones() {
    let e = bedrock_credentials_error(
        &env_keys(),
        CredentialFailure::Provider,
        "an error occurred while loading credentials: service error: InvalidClientTokenId: The security token included in the request is invalid.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsInvalid, "AWS-01"));
    let e = bedrock_credentials_error(
        &env_keys(),
        CredentialFailure::Provider,
        "service error: AccessDenied: User: arn:aws:iam::123456789012:user/u is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/Bedrock",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::PermissionDenied, "AWS-05"));
    let d = e.diagnosis.as_ref().unwrap();
    assert!(
        d.cause.starts_with("arn:aws:iam::123456789012:user/u may not call sts:AssumeRole on arn:aws:iam::123456789012:role/Bedrock ("),
        "{}",
        d.cause
    );
    assert!(
        d.remedy.contains(r#""Action":"sts:AssumeRole","Effect":"Allow","Resource":"arn:aws:iam::123456789012:role/Bedrock""#),
        "{}",
        d.remedy
    );
    assert!(d.remedy.contains("trust policy") && !d.remedy.contains("bedrock:"), "{}", d.remedy);
    // moto names no resource; the role comes from the deployment.
    let mut c = env_keys();
    c.role = Some("arn:aws:iam::123456789012:role/no-bedrock".into());
    let e = bedrock_credentials_error(
        &c,
        CredentialFailure::Provider,
        "service error: STS answered HTTP 403: AccessDenied: User: arn:aws:iam::123456789012:user/noperm is not authorized to perform: sts:AssumeRole",
    );
    let d = e.diagnosis.as_ref().unwrap();
    assert!(
        d.cause
            .contains("may not call sts:AssumeRole on arn:aws:iam::123456789012:role/no-bedrock ("),
        "{}",
        d.cause
    );
}

#[test]
fn compact_timestamps_parse() {
    assert_eq!(compact_time("20180920T174101Z"), Some(1_537_465_261));
    assert_eq!(compact_time("2018-09-20"), None);
}

/// The wire shapes AWS errors arrive in (see `wire.rs`): what Bedrock, STS, S3, moto's
/// server and proxies send for the same code and message.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `x-amzn-ErrorType: Code:http://…` + `{"message": …}` (Bedrock, restJson1).
    RestJson,
    /// `{"__type": "com.amazon.coral.service#Code", "Message": …}`, no header (awsJson).
    AwsJson,
    /// `{"Error": {"Code", "Message", "Type"}, "RequestId"}` (query protocol as JSON).
    QueryJson,
    /// moto's server: 403, `text/html`, `<ErrorResponse><Errors><Error>…` and no header.
    MotoXml,
    /// STS: `<ErrorResponse xmlns=…><Error><Type/><Code/><Message/></Error><RequestId/>`.
    StsXml,
    /// S3-style: a bare `<Error><Code/><Message/>…</Error>`.
    S3Xml,
    /// Neither header nor code: the message as plain text (a proxy relaying it).
    TextOnly,
    /// The code in the header, no body at all.
    HeaderOnly,
}

const SHAPES: &[Shape] = &[
    Shape::RestJson,
    Shape::AwsJson,
    Shape::QueryJson,
    Shape::MotoXml,
    Shape::StsXml,
    Shape::S3Xml,
    Shape::TextOnly,
];

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn answer(c: &AwsContext, shape: Shape, code: &str, message: &str) -> UpstreamError {
    let mut h = HeaderMap::new();
    let (m, code_x) = (xml_escape(message), xml_escape(code));
    let body = match shape {
        Shape::RestJson | Shape::HeaderOnly => {
            let value =
                format!("{code}:http://internal.amazon.com/coral/com.amazon.coral.service/");
            h.insert("x-amzn-errortype", value.parse().unwrap());
            match shape {
                Shape::HeaderOnly => String::new(),
                _ => serde_json::json!({ "message": message }).to_string(),
            }
        }
        Shape::AwsJson => serde_json::json!({
            "__type": format!("com.amazon.coral.service#{code}"), "Message": message
        })
        .to_string(),
        Shape::QueryJson => serde_json::json!({
            "Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": "q-1"
        })
        .to_string(),
        Shape::MotoXml => {
            h.insert("content-type", "text/html; charset=utf-8".parse().unwrap());
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>{code_x}</Code><Message>{m}</Message><Type>Sender</Type></Error></Errors></ErrorResponse>"
            )
        }
        Shape::StsXml => format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code_x}</Code>\n    <Message>{m}</Message>\n  </Error>\n  <RequestId>sts-req-1</RequestId>\n</ErrorResponse>\n"
        ),
        Shape::S3Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code_x}</Code><Message>{m}</Message><RequestId>s3-req-1</RequestId></Error>"
        ),
        Shape::TextOnly => message.to_owned(),
    };
    bedrock_http_error(c, None, 403, &h, body.as_bytes())
}

/// Nothing the user reads carries markup.
fn assert_no_markup(e: &UpstreamError, shape: Shape) {
    let d = e.diagnosis.as_ref().unwrap();
    for (what, text) in [("message", &e.message), ("cause", &d.cause), ("remedy", &d.remedy)] {
        for tag in ["<Error", "</", "<?xml", "<Message", "&lt;", "&amp;", "Sender</"] {
            assert!(!text.contains(tag), "{shape:?}: the {what} quotes `{tag}`: {text}");
        }
        // The remedy may show a policy document; the rest never quotes a JSON body.
        assert!(what == "remedy" || !text.contains("{\""), "{shape:?}: the {what}: {text}");
    }
}

const INVALID: &str = "The security token included in the request is invalid.";
const NO_SUCH_KEY: &str = "The AWS Access Key Id you provided does not exist in our records.";
const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const EXPIRED: &str = "The security token included in the request is expired";
const MOTO_DENIED: &str =
    "User: arn:aws:iam::123456789012:user/noperm is not authorized to perform: bedrock:InvokeModel";

#[test]
fn unknown_keys_are_aws01_in_every_shape_by_code_and_by_text() {
    for shape in SHAPES {
        for (code, message) in [
            ("InvalidClientTokenId", INVALID),
            ("UnrecognizedClientException", INVALID),
            ("InvalidAccessKeyId", NO_SUCH_KEY),
            // The text alone is enough, whatever code came with it.
            ("AccessDenied", INVALID),
            ("Forbidden", NO_SUCH_KEY),
        ] {
            let e = answer(&env_keys(), *shape, code, message);
            assert_eq!(
                (e.kind, id(&e)),
                (ErrorKind::CredentialsInvalid, "AWS-01"),
                "{shape:?} {code}: {}",
                text(&e)
            );
            assert_eq!(e.message, message, "{shape:?} {code}");
            let t = text(&e);
            assert!(t.contains(&format!("(\"{message}\")")), "{shape:?}: {t}");
            assert!(t.contains("this is not a missing permission"), "{shape:?}: {t}");
            assert!(!t.contains("bedrock:InvokeModel") && !t.contains("may not call"), "{t}");
            assert_no_markup(&e, *shape);
        }
    }
    // The code alone (no message at all) is enough too.
    for code in ["InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId"] {
        let e = answer(&env_keys(), Shape::HeaderOnly, code, "");
        assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsInvalid, "AWS-01"), "{code}");
        assert_eq!(e.message, "HTTP 403 with an empty body");
    }
}

#[test]
fn a_wrong_secret_is_aws11_in_every_shape() {
    for shape in SHAPES {
        for code in ["SignatureDoesNotMatch", "InvalidSignatureException", "Forbidden"] {
            let e = answer(&env_keys(), *shape, code, BAD_SIGNATURE);
            assert_eq!(
                (e.kind, id(&e)),
                (ErrorKind::CredentialsInvalid, "AWS-11"),
                "{shape:?} {code}: {}",
                text(&e)
            );
            assert!(text(&e).contains("does not belong to the access key ASIA…"), "{}", text(&e));
            assert_no_markup(&e, *shape);
        }
    }
    let e = answer(&env_keys(), Shape::HeaderOnly, "SignatureDoesNotMatch", "");
    assert_eq!(id(&e), "AWS-11");
}

#[test]
fn expired_credentials_are_aws02_in_every_shape() {
    for shape in SHAPES {
        for code in ["ExpiredToken", "ExpiredTokenException", "Forbidden"] {
            let e = answer(&sso_profile(), *shape, code, EXPIRED);
            assert_eq!(
                (e.kind, id(&e)),
                (ErrorKind::CredentialsExpired, "AWS-02"),
                "{shape:?} {code}: {}",
                text(&e)
            );
            assert!(text(&e).contains("aws sso login --profile cc"), "{}", text(&e));
            assert_no_markup(&e, *shape);
        }
    }
    let e = answer(&sso_profile(), Shape::HeaderOnly, "ExpiredToken", "");
    assert_eq!(id(&e), "AWS-02");
}

#[test]
fn a_missing_permission_is_aws05_in_every_shape_with_a_clean_cause() {
    for shape in SHAPES {
        for code in ["AccessDenied", "AccessDeniedException", "Forbidden"] {
            let e = answer(&sso_profile(), *shape, code, MOTO_DENIED);
            assert_eq!(
                (e.kind, id(&e)),
                (ErrorKind::PermissionDenied, "AWS-05"),
                "{shape:?} {code}: {}",
                text(&e)
            );
            let d = e.diagnosis.as_ref().unwrap();
            assert!(
                d.cause.starts_with(&format!(
                    "arn:aws:iam::123456789012:user/noperm may not call bedrock:InvokeModel on {MODEL} ("
                )),
                "{shape:?}: {}",
                d.cause
            );
            assert!(d.remedy.contains("arn:aws:bedrock:us-east-1:123456789012:"), "{}", d.remedy);
            assert_no_markup(&e, *shape);
        }
    }
}

#[test]
fn a_refusal_that_names_no_cause_does_not_claim_a_missing_permission() {
    let mut h = HeaderMap::new();
    h.insert("content-type", "text/html".parse().unwrap());
    let body = b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1><hr><center>nginx</center></body></html>";
    let e = bedrock_http_error(&env_keys(), None, 403, &h, body);
    assert_eq!((e.kind, id(&e)), (ErrorKind::PermissionDenied, "AWS-05"));
    assert_eq!(e.message, "403 Forbidden 403 Forbidden nginx");
    let t = text(&e);
    assert!(t.contains("without saying whether a permission is missing"), "{t}");
    assert!(t.contains("aws sts get-caller-identity --profile cc"), "{t}");
    assert!(!t.contains("may not call"), "{t}");
    assert_no_markup(&e, Shape::TextOnly);
    // AccessDenied with nothing but "Access Denied" (S3-style) is the same.
    let e = answer(&env_keys(), Shape::S3Xml, "AccessDenied", "Access Denied");
    assert!(text(&e).contains("without saying whether"), "{}", text(&e));
}

#[test]
fn clock_skew_is_recognised_by_text_in_xml_too() {
    let e = answer(
        &env_keys(),
        Shape::StsXml,
        "SignatureDoesNotMatch",
        "Signature expired: 20180920T174101Z is now earlier than 20180920T174504Z (20180920T175004Z - 5 min.)",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::ClockSkew, "AWS-12"));
    let e = answer(
        &env_keys(),
        Shape::S3Xml,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
    );
    assert_eq!((e.kind, id(&e)), (ErrorKind::ClockSkew, "AWS-12"));
}

#[test]
fn the_request_id_in_an_xml_body_is_named_when_no_header_carries_one() {
    let e = answer(&env_keys(), Shape::StsXml, "InvalidClientTokenId", INVALID);
    assert!(text(&e).contains("(AWS request id sts-req-1)"), "{}", text(&e));
}

#[test]
fn sts_refusals_of_assume_role_are_classified_by_code_and_text() {
    for (detail, kind, catalog) in [
        (
            "an error occurred while loading credentials: service error: SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.",
            ErrorKind::CredentialsInvalid,
            "AWS-11",
        ),
        (
            "an error occurred while loading credentials: service error: ExpiredToken: The security token included in the request is expired",
            ErrorKind::CredentialsExpired,
            "AWS-02",
        ),
        (
            "an error occurred while loading credentials: unhandled error: The AWS Access Key Id you provided does not exist in our records.",
            ErrorKind::CredentialsInvalid,
            "AWS-01",
        ),
    ] {
        let e = bedrock_credentials_error(&env_keys(), CredentialFailure::Provider, detail);
        assert_eq!((e.kind, id(&e)), (kind, catalog), "{detail}");
    }
}

#[test]
fn aws04_a_profile_no_file_defines_says_where_it_looked_and_how_to_create_it() {
    let c = ctx(AwsAuth::Profile {
        name: "work".into(),
        source: "aws_profile_name in c.yaml:7:7; no file defines it".into(),
        sso: None,
        process: false,
        undefined: Some(UndefinedProfile {
            searched: vec![
                "/home/u/.aws/config (no `[profile work]` section)".into(),
                "/home/u/.aws/credentials (does not exist)".into(),
            ],
            defined: vec!["default".into(), "cc".into()],
            config_file: "/home/u/.aws/config".into(),
            credentials_file: "/home/u/.aws/credentials".into(),
        }),
    });
    for failure in [CredentialFailure::NotLoaded, CredentialFailure::InvalidConfiguration] {
        let e = bedrock_credentials_error(
            &c,
            failure,
            "the credential provider was not enabled: no providers in chain provided credentials",
        );
        assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsMissing, "AWS-04"));
        let d = e.diagnosis.as_ref().unwrap();
        assert_eq!(
            d.cause,
            "Profile `work` (aws_profile_name in c.yaml:7:7) used by the deployment of `balanced` \
             (bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0, us-east-1) is not defined in any \
             file the gateway read: /home/u/.aws/config (no `[profile work]` section), \
             /home/u/.aws/credentials (does not exist). They define: default, cc."
        );
        assert!(d.remedy.starts_with("Create the profile: run `aws configure sso --profile work`"));
        assert!(d.remedy.contains("a `[profile work]` section to /home/u/.aws/config"));
        assert!(!d.remedy.contains("aws_profile_name: work"), "{}", d.remedy);
    }
    // A timeout is still a timeout.
    let e =
        bedrock_credentials_error(&c, CredentialFailure::TimedOut, "no credentials within 30 s");
    assert_eq!(id(&e), "NET-03");
}

#[test]
fn a_refused_bedrock_api_key_is_aws13_whatever_aws_says_about_the_token() {
    let c = ctx(AwsAuth::BearerKey {
        prefix: "ABSK…".into(),
        source: "AWS_BEARER_TOKEN_BEDROCK from the process environment".into(),
    });
    for (shape, code, message) in [
        (Shape::RestJson, "UnrecognizedClientException", INVALID),
        (Shape::MotoXml, "InvalidClientTokenId", INVALID),
        (Shape::TextOnly, "", EXPIRED),
    ] {
        let e = answer(&c, shape, code, message);
        assert_eq!((e.kind, id(&e)), (ErrorKind::CredentialsInvalid, "AWS-13"), "{shape:?}");
        assert!(!text(&e).contains("sts get-caller-identity"), "{}", text(&e));
    }
}
