//! Emulates Bedrock runtime for Anthropic models (embedding models: `embed.rs`): `POST /model/{modelId}/invoke`,
//! `/invoke-with-response-stream` and `/count-tokens`. Authentication (SigV4 or a Bedrock API
//! key) and the body checks come first, as on AWS, and never consume a scripted reply; valid
//! calls render the next reply as the Anthropic message, or as event-stream `chunk` frames.

use std::time::Duration;

use axum::body::Body as HttpBody;
use axum::http::HeaderValue;
use axum::response::Response;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use super::errors::{self, AwsError, from_reply, json_error, member_name, respond};
use super::sigv4::{self, Failure};
use super::{AwsCall, eventstream};
use crate::Shared;
use crate::anthropic::{Rendered, echo_text, estimate_input};
use crate::faults::{self, Plan};
use crate::reply::{Block, Body, split_words};

const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";
/// The region of Bedrock API keys (the mock does not bind keys to a region).
const API_KEY_REGION: &str = "us-east-1";
/// Keys the Bedrock Anthropic schema rejects that clients are known to send by mistake (the
/// real schema rejects every unknown key; the mock lets new Anthropic fields through).
const EXTRANEOUS: [&str; 6] = [
    "model",
    "stream",
    "stream_options",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    Invoke,
    Stream,
    CountTokens,
    /// Converse and ConverseStream (`converse.rs`).
    Converse,
    ConverseStream,
}

impl Operation {
    fn action(self) -> &'static str {
        match self {
            Operation::Invoke | Operation::Converse => "bedrock:InvokeModel",
            Operation::Stream | Operation::ConverseStream => {
                "bedrock:InvokeModelWithResponseStream"
            }
            Operation::CountTokens => "bedrock:CountTokens",
        }
    }
}

/// What a scripted message may name: the caller, the action and the model's resource.
pub(super) struct Context {
    principal: String,
    account: String,
    region: String,
    pub(super) model: String,
    pub(super) operation: Operation,
}

impl Context {
    /// The ARN IAM evaluates: the model ARN as sent, an inference profile in the caller's
    /// account for geo ids (`us.`, `eu.`, `apac.`, `global.`, …), else the foundation model.
    fn resource(&self) -> String {
        let (region, account, model) = (&self.region, &self.account, &self.model);
        if model.starts_with("arn:") {
            model.clone()
        } else if geo_prefix(model).is_some() {
            format!("arn:aws:bedrock:{region}:{account}:inference-profile/{model}")
        } else {
            format!("arn:aws:bedrock:{region}::foundation-model/{model}")
        }
    }

    /// The error with its message's placeholders filled in.
    pub(super) fn fill(&self, error: AwsError) -> AwsError {
        let message = error
            .message()
            .replace("{principal}", &self.principal)
            .replace("{action}", self.operation.action())
            .replace("{resource}", &self.resource())
            .replace("{model}", &self.model)
            .replace("{region}", &self.region)
            .replace("{account}", &self.account);
        AwsError::new(error.status(), error.code(), message)
    }
}

/// Answers one Bedrock runtime call.
pub(crate) async fn route(shared: &Shared, call: &AwsCall<'_>) -> Response {
    let Some((model, operation)) = parse_path(call.path).filter(|_| call.method == "POST") else {
        let message =
            format!("mock-upstream: no Bedrock emulation for {} {}", call.method, call.path);
        return json_error(call, &AwsError::new(404, "UnknownOperationException", message), &[]);
    };
    let (principal, region) = match authenticate(shared, call) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let account = principal.split(':').nth(4).unwrap_or_default().to_owned();
    let context = Context { principal, account, region, model, operation };
    if operation == Operation::CountTokens {
        return count_tokens(call);
    }
    if matches!(operation, Operation::Converse | Operation::ConverseStream) {
        return super::converse::route(shared, call, &context).await;
    }
    if let Some(family) = super::embed::family(&context.model) {
        if operation != Operation::Invoke {
            let message = format!(
                "The provided model doesn't support {}.",
                if operation == Operation::Stream { "streaming" } else { "this operation" }
            );
            return json_error(call, &AwsError::validation(message), &[]);
        }
        return super::embed::invoke(shared, call, &context, family).await;
    }
    match check_body(call.body) {
        Ok(request) => invoke(shared, call, &context, &request).await,
        Err(error) => json_error(call, &error, &[]),
    }
}

/// `/model/{modelId}/{operation}` → the decoded model id and the operation.
fn parse_path(path: &str) -> Option<(String, Operation)> {
    let (model, operation) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    let operation = match operation {
        "invoke" => Operation::Invoke,
        "invoke-with-response-stream" => Operation::Stream,
        "count-tokens" => Operation::CountTokens,
        "converse" => Operation::Converse,
        "converse-stream" => Operation::ConverseStream,
        _ => return None,
    };
    let model = percent_decode_str(model).decode_utf8().ok()?.into_owned();
    (!model.is_empty()).then_some((model, operation))
}

/// `us` for `us.anthropic.claude-…`: the geo prefix of a cross-region inference profile id.
fn geo_prefix(model: &str) -> Option<&str> {
    let (prefix, rest) = model.split_once('.')?;
    let geo = prefix.len() <= 6 && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    (geo && rest.contains('.') && prefix != "anthropic").then_some(prefix)
}

/// The model name Anthropic's JSON reports for a Bedrock id:
/// `us.anthropic.claude-sonnet-4-20250514-v1:0` → `claude-sonnet-4-20250514`.
fn model_name(model: &str) -> String {
    let id = model.rsplit('/').next().unwrap_or(model);
    let id = geo_prefix(id).map_or(id, |prefix| &id[prefix.len() + 1..]);
    let id = id.strip_prefix("anthropic.").unwrap_or(id);
    let version = id.rfind("-v").filter(|&at| {
        let tail = &id[at + 2..];
        !tail.is_empty()
            && tail.split(':').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    version.map_or(id, |at| &id[..at]).to_owned()
}

/// SigV4 for `bedrock`, or a Bedrock API key: the caller's ARN and the region signed for.
fn authenticate(shared: &Shared, call: &AwsCall<'_>) -> Result<(String, String), Response> {
    if let Some(key) = call.header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        if let Some(arn) = shared.aws.registry().api_keys.get(key) {
            return Ok((arn.clone(), API_KEY_REGION.to_owned()));
        }
        let message = if key.starts_with("ABSK") || key.starts_with("bedrock-api-key-") {
            "Authentication failed: Please make sure your API Key is valid."
        } else {
            "Invalid API Key format: Must start with pre-defined prefix"
        };
        return Err(api_key_error(call, message));
    }
    match sigv4::verify(&shared.aws, call, "bedrock") {
        Ok(verified) => Ok((verified.identity.arn, verified.region)),
        Err(failure) => {
            let error = match failure {
                Failure::Missing => AwsError::new(
                    403,
                    "MissingAuthenticationTokenException",
                    "Missing Authentication Token",
                ),
                Failure::Incomplete(message) => {
                    AwsError::new(403, "IncompleteSignatureException", message)
                }
                Failure::UnknownKey => AwsError::unrecognized_client(),
                Failure::Expired => AwsError::expired_token(),
                Failure::Signature(message) => {
                    AwsError::new(403, "InvalidSignatureException", message)
                }
            };
            Err(json_error(call, &error, &[]))
        }
    }
}

/// A rejected Bedrock API key: 403 with `{"Message": …}` (capitalised, as AWS sends it).
fn api_key_error(call: &AwsCall<'_>, message: &str) -> Response {
    let error = AwsError::new(403, "AccessDeniedException", message);
    let body = json!({ "Message": message }).to_string();
    let mut response = respond(call, 403, "application/json", &[], HttpBody::from(body));
    let error_type =
        errors::error_type(error.code()).replace("com.amazon.bedrock", "com.amazon.coral.service");
    if let Ok(value) = HeaderValue::try_from(error_type) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

/// The Bedrock Anthropic schema's checks, with its "Malformed input request" messages.
fn check_body(raw: &[u8]) -> Result<Map<String, Value>, AwsError> {
    let malformed = || {
        AwsError::validation("Malformed input request, please reformat your input and try again.")
    };
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(raw) else {
        return Err(malformed());
    };
    let mut violations = Vec::new();
    for key in ["messages", "max_tokens", "anthropic_version"] {
        if !request.contains_key(key) {
            violations.push(format!("#: required key [{key}] not found"));
        }
    }
    for key in request.keys().filter(|key| EXTRANEOUS.contains(&key.as_str())) {
        violations.push(format!("#: extraneous key [{key}] is not permitted"));
    }
    match request.get("anthropic_version") {
        Some(Value::String(version)) if version != ANTHROPIC_VERSION => {
            violations.push(format!("#/anthropic_version: {version} is not a valid enum value"));
        }
        Some(other) if !other.is_string() => {
            violations.push(format!(
                "#/anthropic_version: expected type: String, found: {}",
                kind(other)
            ));
        }
        _ => {}
    }
    let typed =
        [("max_tokens", "Integer"), ("messages", "JSONArray"), ("anthropic_beta", "JSONArray")];
    for (key, expected) in typed {
        let Some(value) = request.get(key) else { continue };
        let fits = if expected == "Integer" { value.is_u64() } else { value.is_array() };
        if !fits {
            violations.push(format!("#/{key}: expected type: {expected}, found: {}", kind(value)));
        }
    }
    if violations.is_empty() {
        return Ok(request);
    }
    Err(AwsError::validation(format!(
        "Malformed input request: {}, please reformat your input and try again.",
        violations.concat()
    )))
}

/// The JSON schema validator's name for a value's type.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "Integer",
        Value::Number(_) => "BigDecimal",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

/// InvokeModel and InvokeModelWithResponseStream with the next scripted reply.
async fn invoke(
    shared: &Shared,
    call: &AwsCall<'_>,
    context: &Context,
    request: &Map<String, Value>,
) -> Response {
    let reply = shared.next_reply();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut message = match reply.body {
        Body::Error(error) => {
            return json_error(call, &context.fill(from_reply(&error)), &reply.headers);
        }
        Body::Message(message) => message,
    };
    if message.echo {
        message.blocks.insert(0, Block::Text(split_words(&echo_text(request))));
    }
    let stream = context.operation == Operation::Stream;
    let faults = reply.faults;
    if let Some((_, error)) = faults.error_after.as_ref().filter(|_| !stream) {
        return json_error(call, &context.fill(from_reply(error)), &reply.headers);
    }
    let named = message.model.is_some();
    let mut rendered = Rendered::new(call.seq, request, message);
    rendered.id = format!("msg_bdrk_mock{:06}", call.seq);
    for id in &mut rendered.tool_ids {
        *id = id.replace("toolu_mock_", "toolu_bdrk_mock_");
    }
    if !named {
        rendered.model = model_name(&context.model);
    }
    let usage = rendered.usage;
    let first_byte = reply.delay;
    if stream {
        let mut events = rendered.event_values(false);
        let latency = first_byte + faults.event_gap * u32::try_from(events.len()).unwrap_or(0);
        if let Some(stop) = events.last_mut() {
            let mut metrics = json!({
                "inputTokenCount": usage.input_tokens,
                "outputTokenCount": usage.output_tokens,
                "invocationLatency": millis(latency),
                "firstByteLatency": millis(first_byte),
            });
            cache_counts(
                &mut metrics,
                usage.cache_read_input_tokens,
                usage.cache_creation_input_tokens,
            );
            stop["amazon-bedrock-invocationMetrics"] = metrics;
        }
        let plan = Plan {
            hold: faults.hold_after,
            drop: faults.drop_after,
            error: faults.error_after.map(|(at, error)| {
                let error = context.fill(from_reply(&error));
                (at, eventstream::exception(&member_name(error.code()), error.message()))
            }),
            gap: faults.event_gap,
        };
        let frames = events.iter().map(eventstream::chunk).collect();
        let mut headers =
            vec![("x-amzn-bedrock-content-type".to_owned(), "application/json".to_owned())];
        headers.extend(reply.headers);
        let body = faults::body(frames, plan);
        return respond(call, 200, "application/vnd.amazon.eventstream", &headers, body);
    }
    let mut headers = vec![
        ("x-amzn-bedrock-invocation-latency".to_owned(), millis(first_byte).to_string()),
        ("x-amzn-bedrock-output-token-count".to_owned(), usage.output_tokens.to_string()),
        ("x-amzn-bedrock-input-token-count".to_owned(), usage.input_tokens.to_string()),
    ];
    let cache = [
        ("x-amzn-bedrock-cache-read-input-token-count", usage.cache_read_input_tokens),
        ("x-amzn-bedrock-cache-write-input-token-count", usage.cache_creation_input_tokens),
    ];
    headers.extend(
        cache.iter().filter(|(_, n)| *n > 0).map(|(h, n)| ((*h).to_owned(), n.to_string())),
    );
    headers.extend(reply.headers);
    let json = Bytes::from(rendered.json().to_string());
    let body = if faults.drop_after.is_some() || faults.hold_after.is_some() {
        // Cut the body in two so a hold or a drop happens mid-body.
        let half = json.len() / 2;
        let plan = Plan {
            hold: faults.hold_after.map(|(_, release)| (1, release)),
            drop: faults.drop_after.map(|_| 1),
            ..Plan::default()
        };
        faults::body(vec![json.slice(..half), json.slice(half..)], plan)
    } else {
        HttpBody::from(json)
    };
    respond(call, 200, "application/json", &headers, body)
}

/// Adds Bedrock's cache counts to the invocation metrics when the reply used the cache.
fn cache_counts(metrics: &mut Value, read: u64, write: u64) {
    if read > 0 || write > 0 {
        metrics["cacheReadInputTokenCount"] = json!(read);
        metrics["cacheWriteInputTokenCount"] = json!(write);
    }
}

/// Latency in whole milliseconds, at least 1 (AWS never reports 0).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// CountTokens: `{"input": {"invokeModel": {"body": "<base64>"}}}` or `{"input": {"converse":
/// {…}}}` → `{"inputTokens": N}`, with the same estimate as the Anthropic emulation.
fn count_tokens(call: &AwsCall<'_>) -> Response {
    let null_input = || {
        AwsError::validation(
            "1 validation error detected: Value null at 'input' failed to satisfy constraint: \
             Member must not be null",
        )
    };
    let request: Value = serde_json::from_slice(call.body).unwrap_or(Value::Null);
    let input = &request["input"];
    let counted = if let Some(body) = input["invokeModel"]["body"].as_str() {
        let decoded = aws_smithy_types::base64::decode(body).unwrap_or_default();
        check_body(&decoded).map(|request| estimate_input(&request))
    } else if let Some(converse) = input["converse"].as_object() {
        let prompt = ["system", "messages", "toolConfig"].map(|key| converse.get(key).cloned());
        Ok((json!(prompt).to_string().len() as u64).div_ceil(4).max(1))
    } else {
        Err(null_input())
    };
    match counted {
        Ok(tokens) => {
            let body = json!({ "inputTokens": tokens }).to_string();
            respond(call, 200, "application/json", &[], HttpBody::from(body))
        }
        Err(error) => json_error(call, &error, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_model_ids() {
        let arn = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-6/invoke";
        assert_eq!(
            parse_path(arn),
            Some((
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6".into(),
                Operation::Invoke
            ))
        );
        assert_eq!(
            parse_path(
                "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream"
            ),
            Some(("anthropic.claude-3-haiku-20240307-v1:0".into(), Operation::Stream))
        );
        assert_eq!(parse_path("/model/x/converse"), Some(("x".into(), Operation::Converse)));
        assert_eq!(parse_path("/model/x/converse-stream").unwrap().1, Operation::ConverseStream);
        assert_eq!(parse_path("/model/x/other"), None);
    }

    #[test]
    fn model_names_drop_bedrock_decorations() {
        assert_eq!(
            model_name("us.anthropic.claude-sonnet-4-20250514-v1:0"),
            "claude-sonnet-4-20250514"
        );
        assert_eq!(model_name("anthropic.claude-3-haiku-20240307-v1:0"), "claude-3-haiku-20240307");
        assert_eq!(model_name("global.anthropic.claude-sonnet-4-6"), "claude-sonnet-4-6");
        assert_eq!(
            model_name(
                "arn:aws:bedrock:us-east-1:1:inference-profile/eu.anthropic.claude-opus-4-1-20250805-v1:0"
            ),
            "claude-opus-4-1-20250805"
        );
    }

    #[test]
    fn resources_follow_the_id_form() {
        let context = |model: &str| Context {
            principal: "arn:aws:iam::123456789012:user/u".into(),
            account: "123456789012".into(),
            region: "us-west-2".into(),
            model: model.into(),
            operation: Operation::Stream,
        };
        assert_eq!(
            context("us.anthropic.claude-sonnet-4-6").resource(),
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6"
        );
        let bare = context("anthropic.claude-3-haiku-20240307-v1:0");
        assert_eq!(
            bare.resource(),
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
        );
        let filled = bare.fill(AwsError::not_authorized());
        assert_eq!(
            filled.message(),
            "User: arn:aws:iam::123456789012:user/u is not authorized to perform: \
             bedrock:InvokeModelWithResponseStream on resource: \
             arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0 \
             because no identity-based policy allows the bedrock:InvokeModelWithResponseStream action"
        );
    }

    #[test]
    fn body_violations_are_listed_like_the_schema_validator() {
        let Err(error) = check_body(br#"{"model":"x","stream":true,"messages":[]}"#) else {
            panic!("accepted a body with model and stream")
        };
        assert_eq!(
            error.message(),
            "Malformed input request: #: required key [max_tokens] not found#: required key \
             [anthropic_version] not found#: extraneous key [model] is not permitted#: extraneous \
             key [stream] is not permitted, please reformat your input and try again."
        );
        assert_eq!(error.code(), "ValidationException");
        let ok = br#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[],"anthropic_beta":["x"]}"#;
        assert!(check_body(ok).is_ok());
    }
}
