//! The Bedrock runtime emulation seen from a client: SigV4 and API-key authentication with AWS's
//! own failures, body checks, InvokeModel JSON, event-stream frames and scripted AWS errors.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed unwrap is a failed test"
)]

mod aws_support;

use std::time::{Duration, SystemTime};

use aws_support::{KEY, Signer, chunk_event, frames, header, identity};
use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply, Usage};
use serde_json::{Value, json};

const PLAIN: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const GEO: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123";

fn body() -> Value {
    json!({
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["interleaved-thinking-2025-05-14"],
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say: WORKS"}],
    })
}

/// The URL an AWS SDK sends: the model id percent-encoded (`:` → `%3A`, `/` → `%2F`).
fn url(mock: &MockUpstream, model: &str, operation: &str) -> String {
    let encoded = model.replace(':', "%3A").replace('/', "%2F");
    format!("{}/model/{encoded}/{operation}", mock.url())
}

async fn mock() -> MockUpstream {
    let mock = MockUpstream::start().await;
    mock.aws().identity(identity());
    mock
}

async fn invoke(
    mock: &MockUpstream,
    signer: &Signer,
    model: &str,
    body: &Value,
) -> reqwest::Response {
    let url = url(mock, model, "invoke");
    signer.post(&url, "application/json", body.to_string().into_bytes()).send().await.unwrap()
}

/// Status, `x-amzn-ErrorType` and `message` of an error answer.
async fn failure(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let error_type = response.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body: Value = response.json().await.unwrap();
    (status, error_type, body["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn signed_requests_verify_for_every_model_id_form() {
    let mock = mock().await;
    let signer = Signer::new(&identity(), "bedrock");
    for model in [PLAIN, GEO, ARN] {
        let response = invoke(&mock, &signer, model, &body()).await;
        assert_eq!(response.status(), 200, "{model}: {}", response.text().await.unwrap());
    }
    // A client that sends `:` unencoded and signs what it sent verifies too.
    let raw = format!("{}/model/{PLAIN}/invoke", mock.url());
    let response = signer.post(&raw, "application/json", body().to_string().into()).send().await;
    assert_eq!(response.unwrap().status(), 200);
    let received = mock.received();
    assert_eq!(received[0].path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke");
    assert_eq!(received[1].body, body(), "the exact upstream body is recorded");
}

#[tokio::test]
async fn the_path_must_be_signed_re_encoded() {
    let mock = mock().await;
    let mut signer = Signer::new(&identity(), "bedrock");
    signer.single_encoding = true;
    let (status, error_type, message) = failure(invoke(&mock, &signer, PLAIN, &body()).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        error_type,
        "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/"
    );
    assert!(message.starts_with("The request signature we calculated does not match"));
    assert_eq!(mock.pending(), 0);
}

#[tokio::test]
async fn credential_failures_are_aws_own() {
    let mock = mock().await;
    let wrong = Signer::new(&identity(), "bedrock").secret("not-the-secret");
    let (status, error_type, message) = failure(invoke(&mock, &wrong, GEO, &body()).await).await;
    assert_eq!((status, error_type.split(':').next().unwrap()), (403, "InvalidSignatureException"));
    assert_eq!(
        message,
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );

    let stranger = Signer::new(&AwsIdentity::new("AKIAUNKNOWN000000000", "x"), "bedrock");
    let (status, error_type, message) = failure(invoke(&mock, &stranger, GEO, &body()).await).await;
    assert_eq!(status, 403);
    assert_eq!(
        error_type,
        "UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/"
    );
    assert_eq!(message, "The security token included in the request is invalid.");

    let mut skewed = Signer::new(&identity(), "bedrock");
    skewed.time = SystemTime::now() - Duration::from_secs(10 * 60);
    let (status, error_type, message) = failure(invoke(&mock, &skewed, GEO, &body()).await).await;
    assert_eq!((status, error_type.split(':').next().unwrap()), (403, "InvalidSignatureException"));
    assert!(message.starts_with("Signature expired: "), "{message}");
    assert!(message.ends_with(" - 5 min.)"), "{message}");
    let response = invoke(&mock, &skewed, GEO, &body()).await;
    assert!(response.headers().contains_key("date"), "the skew is read from the response Date");

    let mut sts_scoped = Signer::new(&identity(), "bedrock");
    sts_scoped.service = "bedrock-runtime";
    let (_, _, message) = failure(invoke(&mock, &sts_scoped, GEO, &body()).await).await;
    assert_eq!(message, "Credential should be scoped to correct service: 'bedrock'. ");

    let unsigned = reqwest::Client::new().post(url(&mock, GEO, "invoke")).json(&body()).send();
    let (status, error_type, _) = failure(unsigned.await.unwrap()).await;
    assert_eq!(
        (status, error_type.split(':').next().unwrap()),
        (403, "MissingAuthenticationTokenException")
    );
}

#[tokio::test]
async fn session_tokens_are_required_and_expire() {
    let mock = MockUpstream::start().await;
    let temporary = AwsIdentity::new("ASIAMOCKTEMP00000001", "temporary-secret")
        .session_token("session-token-1")
        .arn("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_BedrockUsers_abc123/dev@example.com");
    mock.aws().identity(temporary.clone());
    let signer = Signer::new(&temporary, "bedrock");
    let response = invoke(&mock, &signer, GEO, &body()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(mock.received()[0].header("x-amz-security-token"), Some("session-token-1"));

    let mut tokenless = Signer::new(&temporary, "bedrock");
    tokenless.token = None;
    let (_, error_type, message) = failure(invoke(&mock, &tokenless, GEO, &body()).await).await;
    assert!(error_type.starts_with("UnrecognizedClientException:"));
    assert_eq!(message, "The security token included in the request is invalid.");

    mock.aws().expire("ASIAMOCKTEMP00000001");
    let (status, error_type, message) = failure(invoke(&mock, &signer, GEO, &body()).await).await;
    assert_eq!(status, 403);
    assert!(error_type.starts_with("ExpiredTokenException:"));
    assert_eq!(message, "The security token included in the request is expired");
}

#[tokio::test]
async fn bedrock_api_keys_are_bearer_tokens() {
    let mock = MockUpstream::start().await;
    mock.aws().bedrock_api_key("ABSKbW9jay1rZXk=");
    let send = |key: &'static str| {
        reqwest::Client::new().post(url(&mock, GEO, "invoke")).bearer_auth(key).json(&body()).send()
    };
    assert_eq!(send("ABSKbW9jay1rZXk=").await.unwrap().status(), 200);
    let received = &mock.received()[0];
    for sigv4 in ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
        assert_eq!(received.header(sigv4), None, "the bearer path sent {sigv4}");
    }

    for (key, message) in [
        ("sk-ant-not-bedrock", "Invalid API Key format: Must start with pre-defined prefix"),
        ("ABSKc3RhbGU=", "Authentication failed: Please make sure your API Key is valid."),
    ] {
        let response = send(key).await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("AccessDeniedException")
        );
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"Message": message}));
    }
    mock.aws().revoke_bedrock_api_key("ABSKbW9jay1rZXk=");
    assert_eq!(send("ABSKbW9jay1rZXk=").await.unwrap().status(), 403);
}

#[tokio::test]
async fn bodies_are_checked_as_bedrock_does() {
    let mock = mock().await;
    let signer = Signer::new(&identity(), "bedrock");
    let mut with_model = body();
    with_model["model"] = json!("claude-sonnet-4-6");
    with_model["stream"] = json!(true);
    let (status, error_type, message) =
        failure(invoke(&mock, &signer, GEO, &with_model).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_type,
        "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
    );
    assert_eq!(
        message,
        "Malformed input request: #: extraneous key [model] is not permitted#: extraneous key \
         [stream] is not permitted, please reformat your input and try again."
    );
    let mut unversioned = body();
    unversioned.as_object_mut().unwrap().remove("anthropic_version");
    let (_, _, message) = failure(invoke(&mock, &signer, GEO, &unversioned).await).await;
    assert!(message.contains("#: required key [anthropic_version] not found"), "{message}");
    assert_eq!(mock.calls(), 2);
}

#[tokio::test]
async fn invoke_answers_the_anthropic_message_with_token_headers() {
    let mock = mock().await;
    let usage = Usage {
        input_tokens: 12,
        output_tokens: 3,
        cache_read_input_tokens: 5,
        ..Usage::default()
    };
    mock.push(Reply::text("Hello there").usage(usage));
    let response = invoke(&mock, &Signer::new(&identity(), "bedrock"), GEO, &body()).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-amzn-bedrock-input-token-count"], "12");
    assert_eq!(headers["x-amzn-bedrock-output-token-count"], "3");
    assert_eq!(headers["x-amzn-bedrock-cache-read-input-token-count"], "5");
    assert!(headers.contains_key("x-amzn-bedrock-invocation-latency"));
    assert!(headers.contains_key("x-amzn-requestid"));
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["id"], "msg_bdrk_mock000001");
    assert_eq!(message["model"], "claude-sonnet-4-20250514");
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello there"}]));
    assert_eq!(message["usage"]["cache_read_input_tokens"], 5);
}

async fn stream(
    mock: &MockUpstream,
) -> (reqwest::header::HeaderMap, Vec<aws_smithy_types::event_stream::Message>) {
    let url = url(mock, GEO, "invoke-with-response-stream");
    let signer = Signer::new(&identity(), "bedrock");
    let response =
        signer.post(&url, "application/json", body().to_string().into()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, frames(response.bytes().await.unwrap()))
}

#[tokio::test]
async fn streams_are_event_stream_chunks_ending_with_metrics() {
    let mock = mock().await;
    mock.push(Reply::text("Hello world").then_tool_use("lookup", json!({"q": "x"})));
    let (headers, frames) = stream(&mock).await;
    assert_eq!(headers["content-type"], "application/vnd.amazon.eventstream");
    assert_eq!(headers["x-amzn-bedrock-content-type"], "application/json");
    for frame in &frames {
        assert_eq!(header(frame, ":message-type"), Some("event"));
        assert_eq!(header(frame, ":event-type"), Some("chunk"));
        assert_eq!(header(frame, ":content-type"), Some("application/json"));
    }
    let events: Vec<Value> = frames.iter().map(chunk_event).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(events[0]["message"]["id"], "msg_bdrk_mock000001");
    assert_eq!(events[10]["delta"]["stop_reason"], "tool_use");
    assert!(events[5]["content_block"]["id"].as_str().unwrap().starts_with("toolu_bdrk_"));
    let metrics = &events[11]["amazon-bedrock-invocationMetrics"];
    let usage = &events[10]["usage"];
    assert_eq!(metrics["inputTokenCount"], usage["input_tokens"]);
    assert_eq!(metrics["outputTokenCount"], usage["output_tokens"]);
    assert!(metrics["invocationLatency"].as_u64().unwrap() >= 1);
    assert!(metrics["firstByteLatency"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn exception_frames_arrive_mid_stream() {
    let mock = mock().await;
    mock.push(AwsError::throttling().mid_stream(3));
    let (_, frames) = stream(&mock).await;
    assert_eq!(frames.len(), 4);
    assert!(frames[..3].iter().all(|f| header(f, ":message-type") == Some("event")));
    let last = &frames[3];
    assert_eq!(header(last, ":message-type"), Some("exception"));
    assert_eq!(header(last, ":exception-type"), Some("throttlingException"));
    let payload: Value = serde_json::from_slice(last.payload()).unwrap();
    assert_eq!(payload, json!({"message": "Too many requests, please wait before trying again."}));

    // An Anthropic-style mid-stream error becomes the Bedrock member with the same meaning.
    mock.push(Reply::stream_error_after(2, "overloaded_error", "Overloaded"));
    let (_, frames) = stream(&mock).await;
    assert_eq!(header(&frames[2], ":exception-type"), Some("serviceUnavailableException"));
}

#[tokio::test]
async fn scripted_errors_name_the_caller_and_the_model() {
    let mock = mock().await;
    mock.push(AwsError::not_authorized().into());
    mock.push(AwsError::on_demand_not_supported().into());
    mock.push(AwsError::model_not_ready().mid_stream(1));
    let signer = Signer::new(&identity(), "bedrock");
    let (status, error_type, message) = failure(invoke(&mock, &signer, GEO, &body()).await).await;
    assert_eq!((status, error_type.split(':').next().unwrap()), (403, "AccessDeniedException"));
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::123456789012:user/mock-user is not authorized to perform: \
             bedrock:InvokeModel on resource: \
             arn:aws:bedrock:us-east-1:123456789012:inference-profile/{GEO} because no \
             identity-based policy allows the bedrock:InvokeModel action"
        )
    );
    let (status, _, message) = failure(invoke(&mock, &signer, PLAIN, &body()).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        message,
        format!(
            "Invocation of model ID {PLAIN} with on-demand throughput isn\u{2019}t supported. \
             Retry your request with the ID or ARN of an inference profile that contains this \
             model."
        )
    );
    // A mid-stream error answers a non-streaming call as an HTTP error, with AWS's status.
    let (status, error_type, _) = failure(invoke(&mock, &signer, GEO, &body()).await).await;
    assert_eq!((status, error_type.split(':').next().unwrap()), (429, "ModelNotReadyException"));
}

#[tokio::test]
async fn count_tokens_reads_the_invoke_body() {
    let mock = mock().await;
    let signer = Signer::new(&identity(), "bedrock");
    let encoded = aws_smithy_types::base64::encode(body().to_string());
    let request = json!({"input": {"invokeModel": {"body": encoded}}});
    let url = url(&mock, PLAIN, "count-tokens");
    let response = signer.post(&url, "application/json", request.to_string().into()).send().await;
    let counted: Value = response.unwrap().json().await.unwrap();
    assert!(counted["inputTokens"].as_u64().unwrap() > 0, "{counted}");
    assert_eq!(
        mock.received()[0]
            .header("authorization")
            .map(|a| a.contains(&format!("Credential={KEY}/"))),
        Some(true)
    );
    let empty = signer.post(&url, "application/json", b"{}".to_vec()).send().await.unwrap();
    let (status, _, message) = failure(empty).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("1 validation error detected: Value null at 'input'"));
}
