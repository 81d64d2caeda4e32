//! Where AWS credentials come from, emulated: STS (parsed by the real aws-sdk-sts client), the
//! SSO portal's GetRoleCredentials, and the `/_mock/aws/*` admin routes. Issued credentials
//! must then sign Bedrock calls.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed unwrap is a failed test"
)]

mod aws_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_support::{KEY, SECRET, Signer, identity};
use mock_upstream::{AwsIdentity, MockUpstream};
use serde_json::{Value, json};

fn sts(mock: &MockUpstream, key: &str, secret: &str, token: Option<&str>) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, token.map(str::to_owned), None, "test"))
        .endpoint_url(mock.url())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// A Bedrock InvokeModel signed by `identity`; returns the status.
async fn bedrock(mock: &MockUpstream, identity: &AwsIdentity) -> u16 {
    let url = format!("{}/model/us.anthropic.claude-sonnet-4-6/invoke", mock.url());
    let body = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Say: WORKS"}],
    });
    let signer = Signer::new(identity, "bedrock");
    let response = signer.post(&url, "application/json", body.to_string().into()).send().await;
    response.unwrap().status().as_u16()
}

#[tokio::test]
async fn get_caller_identity_parses_in_the_sdk() {
    let mock = MockUpstream::start().await;
    let arn =
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BedrockUsers_abc123/dev@example.com";
    mock.aws().identity(identity().arn(arn));
    let who = sts(&mock, KEY, SECRET, None).get_caller_identity().send().await.unwrap();
    assert_eq!(who.arn(), Some(arn));
    assert_eq!(who.account(), Some("123456789012"));
    assert!(who.user_id().unwrap().ends_with(":dev@example.com"));
    let request = &mock.received()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/"));
    assert!(String::from_utf8_lossy(&request.raw_body).contains("Action=GetCallerIdentity"));

    let error = sts(&mock, "AKIAUNKNOWN000000000", "x", None)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(error.code(), Some("InvalidClientTokenId"));
    assert_eq!(error.message(), Some("The security token included in the request is invalid."));
    let error = sts(&mock, KEY, "wrong", None).get_caller_identity().send().await.unwrap_err();
    assert_eq!(error.into_service_error().code(), Some("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn assume_role_issues_credentials_that_sign_bedrock_calls() {
    let mock = MockUpstream::start().await;
    let role = "arn:aws:iam::210987654321:role/BedrockInvoker";
    mock.aws().identity(identity()).role(role, Some("ext-1"));
    let client = sts(&mock, KEY, SECRET, None);
    let assumed = client
        .assume_role()
        .role_arn(role)
        .role_session_name("switchyard")
        .external_id("ext-1")
        .send()
        .await
        .unwrap();
    let user = assumed.assumed_role_user().unwrap();
    assert_eq!(user.arn(), "arn:aws:sts::210987654321:assumed-role/BedrockInvoker/switchyard");
    assert!(user.assumed_role_id().ends_with(":switchyard"));
    let credentials = assumed.credentials().unwrap();
    assert_eq!(credentials.access_key_id(), "ASIAMOCK000000000001");
    let expires = SystemTime::try_from(*credentials.expiration()).unwrap();
    assert!(expires > SystemTime::now() + Duration::from_secs(3000));

    let issued = &mock.aws().issued()[0];
    assert_eq!(issued.session_token.as_deref(), Some(credentials.session_token()));
    assert_eq!(bedrock(&mock, issued).await, 200);
    // The temporary identity answers GetCallerIdentity with its assumed-role ARN.
    let as_role = sts(
        &mock,
        &issued.access_key_id,
        &issued.secret_access_key,
        issued.session_token.as_deref(),
    );
    let who = as_role.get_caller_identity().send().await.unwrap();
    assert_eq!(who.arn(), Some(user.arn()));

    let denied = client
        .assume_role()
        .role_arn(role)
        .role_session_name("switchyard")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(denied.code(), Some("AccessDenied"));
    assert_eq!(
        denied.message(),
        Some(
            "User: arn:aws:iam::123456789012:user/mock-user is not authorized to perform: \
             sts:AssumeRole on resource: arn:aws:iam::210987654321:role/BedrockInvoker"
        )
    );

    mock.aws().expire("ASIAMOCK000000000001");
    let expired = as_role.get_caller_identity().send().await.unwrap_err().into_service_error();
    assert_eq!(expired.code(), Some("ExpiredToken"));
}

#[tokio::test]
async fn web_identity_tokens_are_exchanged_unsigned() {
    let mock = MockUpstream::start().await;
    mock.aws().web_identity_token("eyJ.mock.jwt");
    let client = sts(&mock, "unused", "unused", None);
    let assumed = client
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::123456789012:role/ci")
        .role_session_name("pipeline")
        .web_identity_token("eyJ.mock.jwt")
        .send()
        .await
        .unwrap();
    let credentials = assumed.credentials().unwrap();
    assert!(credentials.access_key_id().starts_with("ASIA"));
    let bad = client
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::123456789012:role/ci")
        .role_session_name("pipeline")
        .web_identity_token("not-registered")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.into_service_error().code(), Some("InvalidIdentityToken"));
}

async fn role_credentials(mock: &MockUpstream, token: &str, role: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!(
            "{}/federation/credentials?account_id=123456789012&role_name={role}",
            mock.url()
        ))
        .header("x-amz-sso_bearer_token", token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sso_portal_trades_tokens_for_role_credentials() {
    let mock = MockUpstream::start().await;
    mock.aws().sso_token("tok-123", "123456789012", "BedrockUsers");
    let response = role_credentials(&mock, "tok-123", "BedrockUsers").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let credentials = &body["roleCredentials"];
    let key = credentials["accessKeyId"].as_str().unwrap();
    let expiration = credentials["expiration"].as_u64().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(expiration > now + 3_000_000, "epoch millis, an hour ahead");
    let issued = &mock.aws().issued()[0];
    assert_eq!(issued.access_key_id, key);
    assert_eq!(credentials["sessionToken"], issued.session_token.clone().unwrap());
    assert!(
        issued
            .arn
            .starts_with("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BedrockUsers_")
    );
    assert!(issued.arn.ends_with("/dev@example.com"));
    assert_eq!(bedrock(&mock, issued).await, 200);

    let forbidden = role_credentials(&mock, "tok-123", "Admins").await;
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.headers()["x-amzn-errortype"], "ForbiddenException");

    mock.aws().expire_sso_token("tok-123");
    for token in ["tok-123", "never-registered"] {
        let response = role_credentials(&mock, token, "BedrockUsers").await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["x-amzn-errortype"], "UnauthorizedException");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"message": "Session token not found or invalid"}));
    }
    // A fresh login (the test registering the token again) works on the same mock.
    mock.aws().sso_token("tok-123", "123456789012", "BedrockUsers");
    assert_eq!(role_credentials(&mock, "tok-123", "BedrockUsers").await.status(), 200);
}

#[tokio::test]
async fn aws_is_scriptable_over_the_admin_api() {
    let mock = MockUpstream::builder().admin(true).start().await;
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        client.post(format!("{}/_mock/aws/{path}", mock.url())).json(&body).send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    let spec = json!({"access_key_id": KEY, "secret_access_key": SECRET});
    assert_eq!(status(admin("identity", spec).await.unwrap()), 200);
    assert_eq!(status(admin("sso_token", json!({"token": "t"})).await.unwrap()), 400);
    assert_eq!(status(admin("nonsense", json!({})).await.unwrap()), 404);
    let push = client
        .post(format!("{}/_mock/push", mock.url()))
        .json(&json!({"error": {"type": "ThrottlingException", "message": "Too many tokens, please wait before trying again."}}))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 200);
    assert_eq!(bedrock(&mock, &identity()).await, 429);
    assert_eq!(bedrock(&mock, &identity()).await, 200);

    assert_eq!(
        status(
            admin("sso_token", json!({"token": "t", "account_id": "1", "role_name": "R"}))
                .await
                .unwrap()
        ),
        200
    );
    let issued = client.get(format!("{}/_mock/aws/issued", mock.url())).send().await.unwrap();
    assert_eq!(issued.json::<Value>().await.unwrap(), json!([]));
    let reset = client.post(format!("{}/_mock/reset", mock.url())).send().await.unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(bedrock(&mock, &identity()).await, 403, "a reset forgets the identities");
}
