//! Classifies the Anthropic Messages API's answers: an HTTP error (status, headers, body) or
//! an SSE `error` event becomes an [`UpstreamError`] with its kind and a diagnosis from the
//! catalog (ANT-01 … ANT-09).
//!
//! Pure functions over bytes; no I/O. Never prints a key beyond its safe prefix.

use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;

use super::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::Deployment;

/// The Messages API's request size limit (ANT-08).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Current Claude model ids on the Anthropic API, for "did you mean" suggestions (ANT-03).
const KNOWN_MODELS: &[&str] = &[
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1",
    "claude-opus-4-1-20250805",
    "claude-opus-4-0",
    "claude-opus-4-20250514",
    "claude-sonnet-4-0",
    "claude-sonnet-4-20250514",
    "claude-3-7-sonnet-latest",
    "claude-3-7-sonnet-20250219",
    "claude-3-5-haiku-latest",
    "claude-3-5-haiku-20241022",
    "claude-3-haiku-20240307",
];

#[derive(Deserialize)]
struct Envelope {
    error: Option<Detail>,
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// An HTTP error answer of the Messages API (any non-2xx status). `request_bytes` is the size
/// of the body that was sent, for the 413 diagnosis.
pub fn anthropic_http_error(
    deployment: &Deployment,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    request_bytes: usize,
) -> UpstreamError {
    let body = &*super::scrub::scrub_body(deployment, body);
    let parsed = serde_json::from_slice::<Envelope>(body).ok();
    let request_id = parsed
        .as_ref()
        .and_then(|e| e.request_id.clone())
        .or_else(|| header(headers, "request-id").map(str::to_owned));
    let (code, message) = match parsed.and_then(|e| e.error) {
        Some(d) => (d.kind, d.message.unwrap_or_default()),
        None => (None, body_excerpt(body, status)),
    };
    let kind = kind_for(status, code.as_deref(), &message);
    let d = Deploy(deployment);
    let diagnosis = match kind {
        ErrorKind::CredentialsInvalid => Some(bad_key(&d)),
        ErrorKind::PermissionDenied => Some(Diagnosis::new(
            "ANT-02",
            format!(
                "The Anthropic API refused {d}: the key {} is valid but its workspace cannot use \
                 model `{}`.",
                d.key(),
                deployment.model
            ),
            format!(
                "Allow model `{}` for the key's workspace in the Anthropic console (Settings → \
                 Workspaces → Limits), use a key from a workspace that may use it, or point the \
                 deployment at a model the workspace may use.",
                deployment.model
            ),
        )),
        ErrorKind::ModelNotFound => Some(model_not_found(&d)),
        ErrorKind::Configuration => Some(wrong_endpoint(&d, status)),
        ErrorKind::ContextWindow => Some(context_window(&d, &message)),
        ErrorKind::Billing => Some(Diagnosis::new(
            "ANT-05",
            format!("The Anthropic account behind {d} (key {}) has no credit left.", d.key()),
            "Add credits in the Anthropic console (Settings → Billing); meanwhile list a second \
             deployment (another key or provider) under the same alias so requests fall back.",
        )),
        ErrorKind::RateLimited => Some(Diagnosis::new(
            "ANT-06",
            match retry_after(headers) {
                Some(after) => format!(
                    "The Anthropic API rate-limited {d} and asked to wait {} s (retry-after).",
                    after.as_secs_f64()
                ),
                None => format!("The Anthropic API rate-limited {d}."),
            },
            "Retry after the time the API asked for (the gateway passes retry-after on and \
             falls back to the alias's next deployment meanwhile); for more headroom raise the \
             limits in the Anthropic console, or spread the alias over more deployments.",
        )),
        ErrorKind::Overloaded | ErrorKind::UpstreamUnavailable | ErrorKind::Timeout => {
            Some(transient(&d, status))
        }
        ErrorKind::PayloadTooLarge => Some(Diagnosis::new(
            "ANT-08",
            format!(
                "The request to {d} was {} bytes; the Anthropic Messages API accepts at most \
                 {MAX_REQUEST_BYTES} bytes (32 MB).",
                request_bytes
            ),
            "Send fewer or smaller images and documents (resize images, or pass them by URL \
             instead of base64), or split the conversation.",
        )),
        _ => None,
    };
    let mut diagnosis = diagnosis;
    if let (Some(diag), Some(id)) = (&mut diagnosis, &request_id) {
        diag.cause.push_str(&format!(" (Anthropic request id {id})"));
    }
    UpstreamError {
        kind,
        status: Some(status),
        provider_code: code,
        message,
        retry_after: retry_after(headers),
        diagnosis,
    }
}

/// The payload of an SSE `error` event (ANT-09): the API failed after answering 200.
pub fn anthropic_stream_error(deployment: &Deployment, data: &str) -> UpstreamError {
    let data = &*super::scrub::scrub_text(deployment, data);
    let detail = serde_json::from_str::<Envelope>(data).ok().and_then(|e| e.error);
    let (code, message) = match detail {
        Some(d) => (d.kind, d.message.unwrap_or_default()),
        None => (None, data.chars().take(300).collect()),
    };
    let kind = match code.as_deref() {
        Some(code) => kind_for(status_for_type(code), Some(code), &message),
        None => ErrorKind::UpstreamUnavailable,
    };
    let d = Deploy(deployment);
    let what = code.as_deref().unwrap_or("an unreadable error");
    UpstreamError {
        kind,
        status: None,
        provider_code: code.clone(),
        message,
        retry_after: None,
        diagnosis: Some(Diagnosis::new(
            "ANT-09",
            format!("The Anthropic API reported {what} in the middle of the stream of {d}."),
            "Usually transient: retry the request. Before the first event reaches the client \
             the gateway falls back by itself; after it, the stream ends with this error.",
        )),
    }
}

/// A deployment with no key at all: nothing is sent upstream.
pub fn anthropic_missing_key(deployment: &Deployment) -> UpstreamError {
    let d = Deploy(deployment);
    let mut error =
        UpstreamError::new(ErrorKind::CredentialsMissing, format!("{d} has no Anthropic API key"));
    error.diagnosis = Some(Diagnosis::new(
        "CFG-01",
        format!(
            "Neither `api_key` in its litellm_params ({}) nor ANTHROPIC_API_KEY in the \
             environment or an env file gives {d} a key.",
            deployment.location
        ),
        "Set `api_key: os.environ/ANTHROPIC_API_KEY` and export ANTHROPIC_API_KEY (or put it \
         in an env file passed with --env-file), then reload.",
    ));
    error
}

/// A key that cannot travel in an HTTP header (a newline, a control character).
pub fn anthropic_unsendable_key(deployment: &Deployment) -> UpstreamError {
    let d = Deploy(deployment);
    let mut error = UpstreamError::new(
        ErrorKind::CredentialsInvalid,
        format!("the API key of {d} contains characters that cannot be sent in a header"),
    );
    error.diagnosis = Some(Diagnosis::new(
        "ANT-01",
        format!("The key {} contains a newline or another control character.", d.key()),
        "Rewrite the value on one line without quotes or trailing whitespace (in an env \
         file: ANTHROPIC_API_KEY=sk-ant-…), then reload.",
    ));
    error
}

/// The kind for a status, the API's error type and message.
fn kind_for(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    if lower.contains("credit balance is too low") || code == Some("billing_error") {
        return ErrorKind::Billing;
    }
    if lower.contains("prompt is too long")
        || lower.contains("exceed context limit")
        || lower.contains("input is too long")
    {
        return ErrorKind::ContextWindow;
    }
    match (status, code) {
        (_, Some("authentication_error")) | (401, _) => ErrorKind::CredentialsInvalid,
        (_, Some("permission_error")) | (403, _) => ErrorKind::PermissionDenied,
        (_, Some("not_found_error")) | (404, _) => {
            if lower.contains("model") {
                ErrorKind::ModelNotFound
            } else {
                // A 404 that does not name the model is a path the API does not serve:
                // the deployment's api_base is wrong.
                ErrorKind::Configuration
            }
        }
        (_, Some("request_too_large")) | (413, _) => ErrorKind::PayloadTooLarge,
        (_, Some("rate_limit_error")) | (429, _) => ErrorKind::RateLimited,
        (_, Some("overloaded_error")) | (529, _) => ErrorKind::Overloaded,
        (_, Some("timeout_error")) | (408 | 504, _) => ErrorKind::Timeout,
        (_, Some("api_error")) | (500..=599, _) => ErrorKind::UpstreamUnavailable,
        _ => ErrorKind::InvalidRequest,
    }
}

/// The status the API uses for an error type (for SSE `error` events, which have none).
fn status_for_type(code: &str) -> u16 {
    match code {
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        "invalid_request_error" => 400,
        _ => 500,
    }
}

/// `retry-after-ms` (milliseconds, the SDKs' extension) or `retry-after` (seconds).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str, scale: f64| {
        let v: f64 = header(headers, name)?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v / scale))
    };
    seconds("retry-after-ms", 1000.0).or_else(|| seconds("retry-after", 1.0))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A body that is not the API's JSON (a proxy's HTML page): its first line, bounded.
fn body_excerpt(body: &[u8], status: u16) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no reason given");
        return format!("HTTP {status} ({reason}) with an empty body");
    }
    let excerpt: String = text.chars().take(300).collect();
    if excerpt.len() < text.len() { format!("{excerpt}…") } else { excerpt }
}

/// How a diagnosis names a deployment: its alias and `anthropic/<model>`.
struct Deploy<'a>(&'a Deployment);

impl Deploy<'_> {
    /// The key's safe prefix and where it came from, e.g. `sk-ant-a… (ANTHROPIC_API_KEY from
    /// ~/.env:3)`.
    fn key(&self) -> String {
        match &self.0.api_key {
            Some(k) => format!("{} ({})", k.value.safe_prefix(), k.source),
            None => "(none)".to_owned(),
        }
    }
}

impl std::fmt::Display for Deploy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the deployment of `{}` (anthropic/{})", self.0.alias, self.0.model)
    }
}

/// ANT-01: the API did not accept the key. Says where the key came from and what looks
/// wrong with it, never more of it than its safe prefix.
fn bad_key(d: &Deploy<'_>) -> Diagnosis {
    let mut cause = format!("The Anthropic API did not accept the API key of {d}: {}.", d.key());
    if let Some(k) = &d.0.api_key {
        let raw = k.value.expose();
        if raw.trim() != raw {
            cause.push_str(" The value starts or ends with whitespace.");
        }
        let trimmed = raw.trim();
        if trimmed.starts_with(['"', '\'']) || trimmed.ends_with(['"', '\'']) {
            cause.push_str(" The value includes quote characters.");
        }
        if !trimmed.trim_matches(['"', '\'']).starts_with("sk-ant-") {
            cause.push_str(" It does not start with `sk-ant-`, as Anthropic API keys do.");
        }
    }
    Diagnosis::new(
        "ANT-01",
        cause,
        "Check that value: Anthropic API keys start with `sk-ant-`; in an env file write \
         ANTHROPIC_API_KEY=sk-ant-… without quotes or trailing spaces. If the key was revoked, \
         create a new one in the Anthropic console (Settings → API keys) and reload.",
    )
}

/// ANT-03: the model id is unknown; suggests close matches from [`KNOWN_MODELS`].
fn model_not_found(d: &Deploy<'_>) -> Diagnosis {
    let model = d.0.model.as_str();
    let matches = close_matches(model);
    let mut cause = format!("The Anthropic API does not know the model `{model}` of {d}.");
    if KNOWN_MODELS.contains(&model) {
        cause.push_str(&format!(
            " `{model}` is a current Anthropic model id, so the server at api_base may not \
             serve it (a proxy, or an account without access to it)."
        ));
    }
    if !matches.is_empty() {
        cause.push_str(&format!(" Close matches: {}.", matches.join(", ")));
    }
    let example = matches.first().copied().unwrap_or("claude-sonnet-4-5");
    Diagnosis::new(
        "ANT-03",
        cause,
        format!(
            "Write a current model id in the deployment's litellm_params, e.g. `model: \
             anthropic/{example}` (the list is at docs.anthropic.com → Models), then reload."
        ),
    )
}

/// ANT-03's sibling: a 404 that is not about a model means the URL is wrong.
fn wrong_endpoint(d: &Deploy<'_>, status: u16) -> Diagnosis {
    let base = d.0.api_base.as_deref().unwrap_or("https://api.anthropic.com");
    Diagnosis::new(
        "ANT-03",
        format!(
            "{base} answered {status} for the Messages API path of {d}: it does not serve \
             /v1/messages there."
        ),
        "Set `api_base` to the server's root (e.g. https://api.anthropic.com, with or without \
         /v1), or remove it to use the Anthropic API.",
    )
}

/// ANT-04: the prompt (plus max_tokens) does not fit the model's context window.
fn context_window(d: &Deploy<'_>, message: &str) -> Diagnosis {
    let numbers = numbers_in(message);
    let detail = if message.contains("prompt is too long") && numbers.len() >= 2 {
        format!(" The prompt has {} tokens; the model allows {}.", numbers[0], numbers[1])
    } else if message.contains("exceed context limit") && numbers.len() >= 3 {
        format!(
            " Input {} tokens + max_tokens {} exceed the limit of {}.",
            numbers[0], numbers[1], numbers[2]
        )
    } else {
        String::new()
    };
    Diagnosis::new(
        "ANT-04",
        format!("The request does not fit the context window of {d}.{detail}"),
        "Shorten the conversation or lower max_tokens, or configure `context_window_fallbacks` \
         for the alias to a model with a larger window.",
    )
}

/// ANT-07: overloaded or a server error — transient.
fn transient(d: &Deploy<'_>, status: u16) -> Diagnosis {
    Diagnosis::new(
        "ANT-07",
        format!("The Anthropic API failed with a transient error (HTTP {status}) for {d}."),
        "Transient: retry shortly; the gateway falls back to the alias's next deployment when \
         it has one. If it persists, add a deployment on another provider to the alias.",
    )
}

/// The whole numbers in `text`, in order (`"209303 tokens > 200000"` → `[209303, 200000]`).
fn numbers_in(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok()).collect()
}

/// Up to three known model ids closest to `model` by edit distance.
fn close_matches(model: &str) -> Vec<&'static str> {
    let limit = (model.len() / 3).max(3);
    let mut scored: Vec<(usize, &'static str)> = KNOWN_MODELS
        .iter()
        .filter(|known| **known != model)
        .map(|known| {
            // A known id that extends what was written (`claude-3-haiku` →
            // `claude-3-haiku-20240307`) is as close as a typo.
            let distance = edit_distance(model, known);
            let distance = if known.starts_with(model) { distance.min(1) } else { distance };
            (distance, *known)
        })
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    // Stable: among equally close ids the newer (listed first) wins.
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
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{self, EnvOrigin, MapEnv};

    fn deployment(key: &str, model: &str) -> Deployment {
        let yaml = format!(
            "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: \
             anthropic/{model}\n      api_key: os.environ/ANTHROPIC_API_KEY\n"
        );
        let env = MapEnv::default().with(
            "ANTHROPIC_API_KEY",
            key,
            EnvOrigin::File { path: "/home/u/.env".into(), line: 3 },
        );
        let cfg = config::load_from_str(&yaml, Path::new("c.yaml"), &env).unwrap();
        cfg.groups[0].deployments[0].as_ref().clone()
    }

    fn good() -> Deployment {
        deployment("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "claude-sonnet-4-6")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn classify(status: u16, body: &str) -> UpstreamError {
        anthropic_http_error(&good(), status, &HeaderMap::new(), body.as_bytes(), 1000)
    }

    fn id(e: &UpstreamError) -> &'static str {
        e.diagnosis.as_ref().unwrap().id
    }

    fn text(e: &UpstreamError) -> String {
        let d = e.diagnosis.as_ref().unwrap();
        format!("{} Fix: {}", d.cause, d.remedy)
    }

    #[test]
    fn ant01_bad_key_names_its_source_and_prefix_only() {
        let body = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CT"}"#;
        let e = classify(401, body);
        assert_eq!(e.kind, ErrorKind::CredentialsInvalid);
        assert_eq!(id(&e), "ANT-01");
        assert_eq!(e.status, Some(401));
        assert_eq!(e.provider_code.as_deref(), Some("authentication_error"));
        assert_eq!(e.message, "invalid x-api-key");
        let t = text(&e);
        assert!(t.contains("ANTHROPIC_API_KEY from /home/u/.env:3"), "{t}");
        assert!(t.contains("sk-ant-a…"), "{t}");
        assert!(t.contains("`balanced` (anthropic/claude-sonnet-4-6)"), "{t}");
        assert!(t.contains("Anthropic console"), "{t}");
        assert!(t.contains("req_011CT"), "{t}");
        assert!(!t.contains("abcdefghijklmnop"), "the key leaked: {t}");
        assert!(!t.contains("does not start with"), "{t}");
    }

    #[test]
    fn ant01_points_at_quotes_and_a_foreign_prefix() {
        let d = deployment("\"sk-proj-abcdefghijklmnopqrstuvwxyz\" ", "claude-sonnet-4-6");
        let body = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        let e = anthropic_http_error(&d, 401, &HeaderMap::new(), body.as_bytes(), 10);
        let t = text(&e);
        assert!(t.contains("whitespace"), "{t}");
        assert!(t.contains("quote characters"), "{t}");
        assert!(t.contains("does not start with `sk-ant-`"), "{t}");
    }

    #[test]
    fn ant02_permission_names_the_model() {
        let body = r#"{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}"#;
        let e = classify(403, body);
        assert_eq!((e.kind, id(&e)), (ErrorKind::PermissionDenied, "ANT-02"));
        assert!(text(&e).contains("cannot use model `claude-sonnet-4-6`"), "{}", text(&e));
    }

    #[test]
    fn ant03_unknown_model_suggests_close_matches() {
        let d = deployment("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "claude-sonet-4-5");
        let body = r#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-sonet-4-5"}}"#;
        let e = anthropic_http_error(&d, 404, &HeaderMap::new(), body.as_bytes(), 10);
        assert_eq!((e.kind, id(&e)), (ErrorKind::ModelNotFound, "ANT-03"));
        let t = text(&e);
        assert!(t.contains("`claude-sonet-4-5`"), "{t}");
        assert!(t.contains("Close matches: claude-sonnet-4-5"), "{t}");
        assert!(t.contains("model: anthropic/claude-sonnet-4-5"), "{t}");
    }

    #[test]
    fn a_404_without_a_model_is_a_wrong_api_base() {
        let e = classify(404, "<html>Not Found</html>");
        assert_eq!((e.kind, id(&e)), (ErrorKind::Configuration, "ANT-03"));
        assert_eq!(e.message, "<html>Not Found</html>");
        assert!(text(&e).contains("api_base"), "{}", text(&e));
    }

    #[test]
    fn ant04_context_window_reads_both_numbers_from_either_message() {
        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 209303 tokens > 200000 maximum"}}"#;
        let e = classify(400, body);
        assert_eq!((e.kind, id(&e)), (ErrorKind::ContextWindow, "ANT-04"));
        assert!(text(&e).contains("209303 tokens; the model allows 200000"), "{}", text(&e));
        assert!(text(&e).contains("context_window_fallbacks"));

        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 179413 + 32768 > 200000, decrease input length or `max_tokens` and try again"}}"#;
        let e = classify(400, body);
        assert_eq!(e.kind, ErrorKind::ContextWindow);
        assert!(
            text(&e).contains("Input 179413 tokens + max_tokens 32768 exceed the limit of 200000")
        );
    }

    #[test]
    fn ant05_low_credit_is_billing() {
        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#;
        let e = classify(400, body);
        assert_eq!((e.kind, id(&e)), (ErrorKind::Billing, "ANT-05"));
        assert!(text(&e).contains("Add credits"));
    }

    #[test]
    fn ant06_rate_limit_keeps_retry_after() {
        let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#;
        let h = headers(&[("retry-after", "17")]);
        let e = anthropic_http_error(&good(), 429, &h, body.as_bytes(), 10);
        assert_eq!((e.kind, id(&e)), (ErrorKind::RateLimited, "ANT-06"));
        assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
        assert!(text(&e).contains("wait 17 s"), "{}", text(&e));
        let h = headers(&[("retry-after", "17"), ("retry-after-ms", "1500")]);
        let e = anthropic_http_error(&good(), 429, &h, body.as_bytes(), 10);
        assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(anthropic_http_error(&good(), 429, &h, body.as_bytes(), 1).retry_after, None);
    }

    #[test]
    fn ant07_overload_and_server_errors_are_transient() {
        let e = classify(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!((e.kind, id(&e)), (ErrorKind::Overloaded, "ANT-07"));
        assert_eq!(e.message, "Overloaded");
        let e = classify(
            500,
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
        );
        assert_eq!((e.kind, id(&e)), (ErrorKind::UpstreamUnavailable, "ANT-07"));
        let e = classify(502, "");
        assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
        assert_eq!(e.message, "HTTP 502 (Bad Gateway) with an empty body");
    }

    #[test]
    fn ant08_too_large_says_size_and_limit() {
        let body = r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#;
        let e = anthropic_http_error(&good(), 413, &HeaderMap::new(), body.as_bytes(), 40_000_000);
        assert_eq!((e.kind, id(&e)), (ErrorKind::PayloadTooLarge, "ANT-08"));
        assert!(text(&e).contains("40000000 bytes"), "{}", text(&e));
        assert!(text(&e).contains("32 MB"));
    }

    #[test]
    fn other_400s_are_invalid_requests_with_the_message_verbatim() {
        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"temperature: range: 0..1"}}"#;
        let e = classify(400, body);
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(e.message, "temperature: range: 0..1");
        assert!(e.diagnosis.is_none());
    }

    #[test]
    fn ant09_stream_error_event_is_classified_by_its_type() {
        let e = anthropic_stream_error(
            &good(),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!((e.kind, id(&e)), (ErrorKind::Overloaded, "ANT-09"));
        assert_eq!((e.status, e.provider_code.as_deref()), (None, Some("overloaded_error")));
        let e = anthropic_stream_error(&good(), "not json");
        assert_eq!(e.kind, ErrorKind::UpstreamUnavailable);
        assert_eq!(e.message, "not json");
    }

    #[test]
    fn close_matches_prefer_the_nearest() {
        assert_eq!(close_matches("claude-opus-4-7")[0], "claude-opus-4-6");
        assert!(!close_matches("claude-opus-4-6").contains(&"claude-opus-4-6"));
        assert_eq!(close_matches("claude-3-haiku")[0], "claude-3-haiku-20240307");
        assert!(close_matches("gpt-4o").is_empty());
    }
}
