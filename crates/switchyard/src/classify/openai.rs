//! Classifies the answers of OpenAI-compatible chat completions servers (OpenAI, Ollama,
//! vLLM): an HTTP error (status, headers, body), an error object inside a stream, and a
//! refused connection to a local model server, into an [`UpstreamError`] with its kind and a
//! diagnosis (OAI-01 … OAI-09, NET-01 for a local server that is not running).
//!
//! Pure functions over bytes; no I/O. Never prints a key beyond its safe prefix.

use std::time::Duration;

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::{Diagnosis, ErrorKind, UpstreamError};
use crate::config::{Deployment, OpenAiFlavor, ProviderKind};

/// OpenAI's shape `{"error":{"message","type","param","code"}}`; vLLM's older one puts
/// `message`, `type` and `code` (a number) at the top level.
#[derive(Deserialize)]
struct Envelope {
    error: Option<Value>,
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The error's type, code and message, whichever shape carried them.
struct Parsed {
    kind: Option<String>,
    code: Option<String>,
    message: String,
}

fn parse(body: &[u8]) -> Option<Parsed> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match envelope.error {
        Some(Value::Object(e)) => Some(Parsed {
            kind: text(e.get("type")),
            code: text(e.get("code")),
            message: text(e.get("message")).unwrap_or_default(),
        }),
        // Ollama's native shape: `{"error": "model 'x' not found"}`.
        Some(Value::String(message)) => Some(Parsed { kind: None, code: None, message }),
        _ => envelope.message.map(|message| Parsed { kind: envelope.kind, code: None, message }),
    }
}

/// An HTTP error answer (any non-2xx status) of an OpenAI-compatible server.
pub fn openai_http_error(
    deployment: &Deployment,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> UpstreamError {
    let body = &*super::scrub::scrub_body(deployment, body);
    let (kind_text, code, message) = match parse(body) {
        Some(p) => (p.kind, p.code, p.message),
        None => (None, None, body_excerpt(body, status)),
    };
    let kind = kind_for(status, code.as_deref().or(kind_text.as_deref()), &message);
    let retry = retry_after(headers);
    let d = Deploy(deployment);
    let diagnosis = diagnose(&d, kind, status, &message, retry);
    UpstreamError {
        kind,
        status: Some(status),
        provider_code: code.or(kind_text),
        message,
        retry_after: retry,
        diagnosis,
    }
}

/// An error object inside a 200 stream (`data: {"error": {...}}`, as vLLM and proxies send):
/// the server failed after answering.
pub fn openai_stream_error(deployment: &Deployment, data: &str) -> UpstreamError {
    let data = &*super::scrub::scrub_text(deployment, data);
    let parsed = parse(data.as_bytes());
    let (code, message) = match parsed {
        Some(p) => (p.code.or(p.kind), p.message),
        None => (None, data.chars().take(300).collect()),
    };
    let status = match code.as_deref() {
        Some("rate_limit_exceeded") => 429,
        Some("context_length_exceeded" | "invalid_request_error") => 400,
        Some(c) => c.parse().unwrap_or(500),
        None => 500,
    };
    let kind = kind_for(status, code.as_deref(), &message);
    let d = Deploy(deployment);
    let what = code.as_deref().unwrap_or("an error");
    UpstreamError {
        kind,
        status: None,
        provider_code: code.clone(),
        message,
        retry_after: None,
        diagnosis: Some(Diagnosis::new(
            "OAI-09",
            format!("{} reported {what} in the middle of the stream of {d}.", d.server()),
            "Usually transient: retry the request. Before the first event reaches the client \
             the gateway falls back by itself; after it, the stream ends with this error.",
        )),
    }
}

/// An OpenAI deployment with no key and no `api_base`: nothing is sent upstream.
pub fn openai_missing_key(deployment: &Deployment) -> UpstreamError {
    let d = Deploy(deployment);
    let mut error =
        UpstreamError::new(ErrorKind::CredentialsMissing, format!("{d} has no OpenAI API key"));
    error.diagnosis = Some(Diagnosis::new(
        "CFG-01",
        format!(
            "Neither `api_key` in its litellm_params ({}) nor OPENAI_API_KEY in the environment \
             or an env file gives {d} a key.",
            deployment.location
        ),
        "Set `api_key: os.environ/OPENAI_API_KEY` and export OPENAI_API_KEY (or put it in an \
         env file passed with --env-file), then reload. A local OpenAI-compatible server needs \
         no key: give the deployment its `api_base`.",
    ));
    error
}

/// A key that cannot travel in an HTTP header (a newline, a control character).
pub fn openai_unsendable_key(deployment: &Deployment) -> UpstreamError {
    let d = Deploy(deployment);
    let mut error = UpstreamError::new(
        ErrorKind::CredentialsInvalid,
        format!("the API key of {d} contains characters that cannot be sent in a header"),
    );
    error.diagnosis = Some(Diagnosis::new(
        "OAI-01",
        format!("The key {} contains a newline or another control character.", d.key()),
        "Rewrite the value on one line without quotes or trailing whitespace (in an env file: \
         OPENAI_API_KEY=sk-…), then reload.",
    ));
    error
}

/// A transport failure of `deployment` at `base`: a refused connection to a local model
/// server (Ollama, vLLM, anything on loopback) says which server to start and how.
pub fn openai_connect_error(
    deployment: &Deployment,
    base: &str,
    mut error: UpstreamError,
) -> UpstreamError {
    let refused = error.message.starts_with("cannot connect to");
    let Some(diagnosis) = error.diagnosis.as_mut().filter(|d| d.id == "NET-01") else {
        return error;
    };
    if !refused {
        return error;
    }
    let local = ["localhost", "127.0.0.1", "[::1]", "0.0.0.0", "host.docker.internal"]
        .iter()
        .any(|h| base.contains(h));
    let d = Deploy(deployment);
    let model = &deployment.model;
    let (question, remedy) = match deployment.provider {
        ProviderKind::OpenAi(OpenAiFlavor::Ollama | OpenAiFlavor::OllamaChat) => (
            format!("Is Ollama running at {base}?"),
            format!(
                "Start it with `ollama serve` (or the Ollama app), check with `curl -sS \
                 {base}/models`, and pull the model once with `ollama pull {model}`; if Ollama \
                 listens elsewhere, set `api_base` to its URL. Meanwhile the alias falls back \
                 to its next deployment when it has one."
            ),
        ),
        ProviderKind::OpenAi(OpenAiFlavor::HostedVllm) => (
            format!("Is the vLLM server running at {base}?"),
            format!(
                "Start it with `vllm serve {model}` (it listens on port 8000 by default), \
                 check with `curl -sS {base}/models`, and make `api_base` name its host and \
                 port. Meanwhile the alias falls back to its next deployment when it has one."
            ),
        ),
        _ if local => (
            format!("Is the OpenAI-compatible server of {d} running at {base}?"),
            format!(
                "Start the server, check with `curl -sS {base}/models`, and make `api_base` \
                 name its host and port. Meanwhile the alias falls back to its next \
                 deployment when it has one."
            ),
        ),
        _ => return error,
    };
    diagnosis.cause = format!("{} {question}", diagnosis.cause);
    diagnosis.remedy = remedy;
    error
}

/// The kind for a status, the server's error code (or type) and message.
fn kind_for(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    if code == Some("model_not_found") {
        return ErrorKind::ModelNotFound;
    }
    if code == Some("insufficient_quota") || lower.contains("exceeded your current quota") {
        return ErrorKind::Billing;
    }
    if code == Some("context_length_exceeded")
        || [
            "maximum context length",
            "context length",
            "context window",
            "too many tokens",
            "prompt is too long",
        ]
        .iter()
        .any(|p| lower.contains(p))
    {
        return ErrorKind::ContextWindow;
    }
    if matches!(code, Some("content_filter" | "content_policy_violation"))
        || lower.contains("content management policy")
        || lower.contains("content_filter")
    {
        return ErrorKind::ContentPolicy;
    }
    match status {
        401 => ErrorKind::CredentialsInvalid,
        403 => ErrorKind::PermissionDenied,
        404 if lower.contains("model") => ErrorKind::ModelNotFound,
        // A 404 that does not name a model is a path the server does not serve.
        404 => ErrorKind::Configuration,
        413 => ErrorKind::PayloadTooLarge,
        429 => ErrorKind::RateLimited,
        408 | 504 => ErrorKind::Timeout,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 if lower.contains("overloaded") => ErrorKind::Overloaded,
        500..=599 => ErrorKind::UpstreamUnavailable,
        _ => match code {
            Some("authentication_error" | "invalid_api_key") => ErrorKind::CredentialsInvalid,
            Some("rate_limit_exceeded") => ErrorKind::RateLimited,
            _ => ErrorKind::InvalidRequest,
        },
    }
}

fn diagnose(
    d: &Deploy<'_>,
    kind: ErrorKind,
    status: u16,
    message: &str,
    retry: Option<Duration>,
) -> Option<Diagnosis> {
    let server = d.server();
    let model = &d.0.model;
    Some(match kind {
        ErrorKind::CredentialsInvalid => bad_key(d),
        ErrorKind::PermissionDenied => Diagnosis::new(
            "OAI-02",
            format!(
                "{server} refused {d}: the key {} is valid but may not use model `{model}` \
                 (or the project, organization or region may not).",
                d.key()
            ),
            format!(
                "Allow model `{model}` for the key's project (OpenAI dashboard → Project → \
                 Limits), use a key of a project that may use it, or point the deployment at \
                 a model it may use."
            ),
        ),
        ErrorKind::ModelNotFound => model_not_found(d),
        ErrorKind::Configuration => Diagnosis::new(
            "OAI-03",
            format!(
                "{} answered {status} for the chat completions path of {d}: it does not serve \
                 /chat/completions there.",
                d.base()
            ),
            "Set `api_base` to the server's OpenAI-compatible root, usually ending in /v1 \
             (e.g. http://localhost:11434/v1 for Ollama, http://host:8000/v1 for vLLM).",
        ),
        ErrorKind::ContextWindow => Diagnosis::new(
            "OAI-04",
            format!("The request does not fit the context window of {d} ({message})."),
            "Shorten the conversation or lower max_tokens, or configure \
             `context_window_fallbacks` for the alias to a model with a larger window. (A local \
             server's window is its own setting: Ollama's `num_ctx`, vLLM's `--max-model-len`.)",
        ),
        ErrorKind::Billing => Diagnosis::new(
            "OAI-05",
            format!("The account behind {d} (key {}) has exceeded its quota.", d.key()),
            "Add credits or raise the budget in the OpenAI dashboard (Settings → Billing); \
             meanwhile list a second deployment under the same alias so requests fall back.",
        ),
        ErrorKind::RateLimited => Diagnosis::new(
            "OAI-06",
            match retry {
                Some(after) => format!(
                    "{server} rate-limited {d} and asked to wait {} s (retry-after / \
                     x-ratelimit-reset-*).",
                    after.as_secs_f64()
                ),
                None => format!("{server} rate-limited {d}."),
            },
            "Retry after the time the server asked for (the gateway falls back to the alias's \
             next deployment meanwhile); for more headroom raise the project's rate limits, or \
             spread the alias over more deployments.",
        ),
        ErrorKind::ContentPolicy => Diagnosis::new(
            "OAI-08",
            format!("{server} refused the request to {d} under its content policy."),
            "Rephrase the request, or configure `content_policy_fallbacks` for the alias.",
        ),
        ErrorKind::Overloaded | ErrorKind::UpstreamUnavailable | ErrorKind::Timeout => {
            Diagnosis::new(
                "OAI-07",
                format!(
                    "{server} failed with a transient error (HTTP {status}) for {d}{}.",
                    if d.local() { "; a local server may still be loading the model" } else { "" }
                ),
                "Transient: retry shortly; the gateway falls back to the alias's next deployment \
                 when it has one. If it persists, check the server's own log.",
            )
        }
        _ => return None,
    })
}

/// OAI-01: the server did not accept the key.
fn bad_key(d: &Deploy<'_>) -> Diagnosis {
    let server = d.server();
    let mut cause = format!("{server} did not accept the API key of {d}: {}.", d.key());
    if let Some(k) = &d.0.api_key {
        let raw = k.value.expose();
        if raw.trim() != raw {
            cause.push_str(" The value starts or ends with whitespace.");
        }
        let trimmed = raw.trim();
        if trimmed.starts_with(['"', '\'']) || trimmed.ends_with(['"', '\'']) {
            cause.push_str(" The value includes quote characters.");
        }
        if d.0.api_base.is_none() && !trimmed.trim_matches(['"', '\'']).starts_with("sk-") {
            cause.push_str(" It does not start with `sk-`, as OpenAI API keys do.");
        }
    }
    let remedy = if d.0.api_base.is_none() {
        "Check that value: OpenAI API keys start with `sk-`; in an env file write \
         OPENAI_API_KEY=sk-… without quotes or trailing spaces. If the key was revoked, create \
         a new one (platform.openai.com → API keys) and reload."
    } else {
        "Give the deployment the key the server at api_base expects (`api_key`, e.g. \
         os.environ/MY_SERVER_KEY; vLLM's is its `--api-key`), then reload."
    };
    Diagnosis::new("OAI-01", cause, remedy)
}

/// OAI-03: the server does not know (or has not pulled) the model.
fn model_not_found(d: &Deploy<'_>) -> Diagnosis {
    let model = &d.0.model;
    let server = d.server();
    let cause = format!("{server} does not know the model `{model}` of {d}.");
    let remedy = match d.0.provider {
        ProviderKind::OpenAi(OpenAiFlavor::Ollama | OpenAiFlavor::OllamaChat) => format!(
            "Pull it with `ollama pull {model}` (list what is installed with `ollama list`), or \
             write an installed model's name in the deployment's `model`, then reload."
        ),
        ProviderKind::OpenAi(OpenAiFlavor::HostedVllm) => format!(
            "The vLLM server serves the model it was started with (`vllm serve <model>`, or \
             `--served-model-name`); list it with `curl -sS {}/models` and write that name in \
             the deployment's `model`.",
            d.base()
        ),
        _ => format!(
            "Write a model id the server serves in the deployment's `model` (list them with \
             `curl -sS {}/models -H \"Authorization: Bearer $OPENAI_API_KEY\"`), then reload.",
            d.base()
        ),
    };
    Diagnosis::new("OAI-03", cause, remedy)
}

/// `retry-after-ms`, `retry-after` (seconds), else the longest `x-ratelimit-reset-*`
/// (OpenAI's `1s`, `6m0s`, `20ms`).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let seconds = |name: &str, scale: f64| {
        let v: f64 = header(name)?.trim().parse().ok()?;
        (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v / scale))
    };
    seconds("retry-after-ms", 1000.0).or_else(|| seconds("retry-after", 1.0)).or_else(|| {
        ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
            .iter()
            .filter_map(|name| go_duration(header(name)?))
            .max()
    })
}

/// A Go-style duration (`1s`, `6m0s`, `1h2m3.5s`, `20ms`); `None` when unreadable.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// A body that is not JSON (a proxy's HTML page): its first line, bounded.
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

/// How a diagnosis names a deployment: its alias and `prefix/model`.
struct Deploy<'a>(&'a Deployment);

impl Deploy<'_> {
    fn key(&self) -> String {
        match &self.0.api_key {
            Some(k) => format!("{} ({})", k.value.safe_prefix(), k.source),
            None => "(none)".to_owned(),
        }
    }

    fn base(&self) -> String {
        match (&self.0.api_base, self.0.provider) {
            (Some(b), _) => b.trim_end_matches('/').to_owned(),
            (None, ProviderKind::OpenAi(OpenAiFlavor::Ollama | OpenAiFlavor::OllamaChat)) => {
                "http://localhost:11434/v1".to_owned()
            }
            (None, _) => "https://api.openai.com/v1".to_owned(),
        }
    }

    fn local(&self) -> bool {
        !matches!(self.0.provider, ProviderKind::OpenAi(OpenAiFlavor::OpenAi))
            || self.0.api_base.as_deref().is_some_and(|b| b.contains("localhost"))
    }

    /// "The OpenAI API", "Ollama at http://…", "the server at http://…".
    fn server(&self) -> String {
        match (self.0.provider, &self.0.api_base) {
            (ProviderKind::OpenAi(OpenAiFlavor::Ollama | OpenAiFlavor::OllamaChat), _) => {
                format!("Ollama at {}", self.base())
            }
            (ProviderKind::OpenAi(OpenAiFlavor::HostedVllm), _) => {
                format!("The vLLM server at {}", self.base())
            }
            (_, None) => "The OpenAI API".to_owned(),
            (_, Some(_)) => format!("The server at {}", self.base()),
        }
    }
}

impl std::fmt::Display for Deploy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the deployment of `{}` ({}/{})",
            self.0.alias,
            self.0.provider.prefix(),
            self.0.model
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use http::HeaderValue;

    use super::*;
    use crate::config::{self, MapEnv};

    fn deployment(model: &str, extra: &str) -> std::sync::Arc<Deployment> {
        let yaml = format!(
            "model_list:\n  - model_name: free\n    litellm_params:\n      model: {model}\n{extra}"
        );
        let cfg = config::load_from_str(&yaml, Path::new("c.yaml"), &MapEnv::default()).unwrap();
        cfg.groups[0].deployments[0].clone()
    }

    fn openai() -> std::sync::Arc<Deployment> {
        deployment("openai/gpt-4o", "      api_key: sk-proj-abcdefghijklmnopqrstuvwxyz\n")
    }

    fn error(d: &Deployment, status: u16, body: &str) -> UpstreamError {
        openai_http_error(d, status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn each_status_and_code_has_its_class() {
        let d = openai();
        let cases = [
            (
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-proj-****xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                ErrorKind::CredentialsInvalid,
                "OAI-01",
            ),
            (
                403,
                r#"{"error":{"message":"You are not allowed to sample from this model","type":"invalid_request_error","param":null,"code":null}}"#,
                ErrorKind::PermissionDenied,
                "OAI-02",
            ),
            (
                404,
                r#"{"error":{"message":"The model `gpt-5x` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
                ErrorKind::ModelNotFound,
                "OAI-03",
            ),
            (
                400,
                r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
                ErrorKind::ContextWindow,
                "OAI-04",
            ),
            (
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
                ErrorKind::Billing,
                "OAI-05",
            ),
            (
                429,
                r#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                ErrorKind::RateLimited,
                "OAI-06",
            ),
            (
                500,
                r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
                ErrorKind::UpstreamUnavailable,
                "OAI-07",
            ),
            (
                503,
                r#"{"error":{"message":"The engine is currently overloaded","type":"server_error","param":null,"code":null}}"#,
                ErrorKind::Overloaded,
                "OAI-07",
            ),
            (
                400,
                r#"{"error":{"message":"Your request was rejected as a result of our safety system","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#,
                ErrorKind::ContentPolicy,
                "OAI-08",
            ),
        ];
        for (status, body, kind, id) in cases {
            let e = error(&d, status, body);
            assert_eq!(e.kind, kind, "{body}");
            let diag = e.diagnosis.unwrap();
            assert_eq!(diag.id, id, "{body}");
            assert!(diag.cause.contains("`free` (openai/gpt-4o)"), "{}", diag.cause);
        }
        let e = error(&d, 400, r#"{"error":{"message":"bad","type":"invalid_request_error"}}"#);
        assert_eq!((e.kind, e.diagnosis), (ErrorKind::InvalidRequest, None));
        let e = error(&d, 404, "<html>nope</html>");
        assert_eq!(e.kind, ErrorKind::Configuration);
    }

    #[test]
    fn bad_key_names_its_source_and_prefix_never_the_key() {
        let d = openai();
        let e =
            error(&d, 401, r#"{"error":{"message":"Incorrect API key","code":"invalid_api_key"}}"#);
        let diag = e.diagnosis.unwrap();
        assert!(diag.cause.contains("sk-proj-…"), "{}", diag.cause);
        assert!(diag.cause.contains("c.yaml"), "{}", diag.cause);
        assert!(!diag.cause.contains("abcdefghijklmnop"));
    }

    #[test]
    fn local_servers_context_messages_and_ollama_model_hints() {
        let ollama = deployment("ollama/qwen3-coder:30b", "");
        let e = error(
            &ollama,
            404,
            r#"{"error":{"message":"model \"qwen3-coder:30b\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#,
        );
        assert_eq!(e.kind, ErrorKind::ModelNotFound);
        let diag = e.diagnosis.unwrap();
        assert!(diag.remedy.contains("ollama pull qwen3-coder:30b"), "{}", diag.remedy);
        assert!(diag.cause.contains("Ollama at http://localhost:11434/v1"), "{}", diag.cause);
        let vllm = deployment(
            "hosted_vllm/meta-llama/Llama-3.1-8B",
            "      api_base: http://gpu:8000/v1\n",
        );
        for message in [
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
            "prompt has too many tokens",
            "the input exceeds the context window",
        ] {
            let body = serde_json::json!({"object":"error","message":message,"type":"BadRequestError","param":null,"code":400});
            let e = error(&vllm, 400, &body.to_string());
            assert_eq!(e.kind, ErrorKind::ContextWindow, "{message}");
        }
    }

    #[test]
    fn retry_after_from_headers_including_ratelimit_resets() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset-requests", HeaderValue::from_static("1s"));
        h.insert("x-ratelimit-reset-tokens", HeaderValue::from_static("6m0s"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(360)));
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("1h2m3.5s"), Some(Duration::from_secs_f64(3723.5)));
        assert_eq!(go_duration("soon"), None);
    }

    #[test]
    fn refused_connection_to_ollama_asks_whether_it_runs() {
        let ollama = deployment("ollama/llama3.1", "");
        let mut net = UpstreamError::new(
            ErrorKind::UpstreamUnavailable,
            "cannot connect to localhost:11434: Connection refused",
        );
        net.diagnosis = Some(Diagnosis::new("NET-01", "could not reach", "check"));
        let e = openai_connect_error(&ollama, "http://localhost:11434/v1", net);
        let diag = e.diagnosis.unwrap();
        assert_eq!(diag.id, "NET-01");
        assert!(diag.cause.contains("Is Ollama running at http://localhost:11434/v1?"));
        assert!(diag.remedy.contains("ollama serve"), "{}", diag.remedy);
    }

    #[test]
    fn stream_errors_are_classified() {
        let d = openai();
        let e = openai_stream_error(
            &d,
            r#"{"error":{"message":"overloaded","type":"server_error","code":"503"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.diagnosis.unwrap().id, "OAI-09");
    }
}
