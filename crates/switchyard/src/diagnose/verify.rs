//! `switchyard verify`: the "Say: WORKS" test through a running gateway, for every alias it
//! lists (or those named) — the reply, tokens, latency and the deployment that served (from
//! `x-switchyard-deployment` / `x-switchyard-attempts`), and for a failure the diagnosis the
//! gateway put in its error body. GW-04 when nothing listens at the URL.
//!
//! A plain HTTP client of the gateway's public API; never sees provider credentials.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::probe::{MAX_TOKENS, PROMPT};
use crate::classify::Diagnosis;
use crate::config::Env;
use crate::exit;
use crate::secret::Secret;

pub const DEFAULT_URL: &str = "http://127.0.0.1:4000";
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    pub key: Option<Secret>,
    /// Only these aliases (all from `/v1/models` when empty).
    pub models: Vec<String>,
    pub stream: bool,
    /// Where `switchyard start` keeps its log, for the GW-04 message.
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub stream: bool,
    pub results: Vec<Check>,
    /// GW-04: nothing answers at the URL.
    pub unavailable: Option<Diagnosis>,
    /// The model list could not be read (a wrong key: GW-01).
    pub listing_error: Option<ErrorInfo>,
    pub passed: usize,
    pub failed: usize,
    pub exit_code: u8,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub alias: String,
    pub pass: bool,
    pub http_status: Option<u16>,
    pub reply: Option<String>,
    /// The reply contains WORKS, as asked.
    pub says_works: bool,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub latency_ms: u64,
    /// `x-switchyard-deployment`: the deployment that served.
    pub deployment: Option<String>,
    /// `x-switchyard-attempts`: `id=class, …, id=ok`.
    pub attempts: Option<String>,
    pub error: Option<ErrorInfo>,
}

/// An error body as the gateway wrote it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub class: Option<String>,
    pub message: String,
    pub diagnosis: Option<Value>,
    pub attempts: Vec<Value>,
}

/// `$XDG_STATE_HOME/switchyard`, else `~/.local/state/switchyard`.
pub fn state_dir(env: &dyn Env) -> Option<PathBuf> {
    if let Some(dir) = env.get("XDG_STATE_HOME").filter(|v| !v.value.trim().is_empty()) {
        return Some(PathBuf::from(dir.value).join("switchyard"));
    }
    let home = env.get("HOME").filter(|v| !v.value.trim().is_empty())?;
    Some(PathBuf::from(home.value).join(".local/state/switchyard"))
}

pub async fn run(opts: &Options) -> Report {
    let url = opts.url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let mut report = Report {
        url: url.clone(),
        stream: opts.stream,
        results: Vec::new(),
        unavailable: None,
        listing_error: None,
        passed: 0,
        failed: 0,
        exit_code: exit::OK,
    };
    let models = if opts.models.is_empty() {
        let mut req = client.get(format!("{url}/v1/models"));
        if let Some(key) = &opts.key {
            req = req.bearer_auth(key.expose());
        }
        match req.send().await {
            Err(e) => {
                report.unavailable = Some(not_running(&url, &e, opts));
                report.exit_code = exit::NOT_RUNNING;
                return report;
            }
            Ok(resp) if !resp.status().is_success() => {
                let class = header(&resp, "x-switchyard-error-class");
                let body = resp.text().await.unwrap_or_default();
                report.listing_error = Some(error_info(class, &body));
                report.exit_code = exit::FAILED;
                return report;
            }
            Ok(resp) => {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                body["data"]
                    .as_array()
                    .map(|list| {
                        list.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect()
                    })
                    .unwrap_or_default()
            }
        }
    } else {
        opts.models.clone()
    };
    for alias in models {
        match check(&client, &url, &alias, opts).await {
            Ok(c) => report.results.push(c),
            Err(e) => {
                report.unavailable = Some(not_running(&url, &e, opts));
                report.exit_code = exit::NOT_RUNNING;
                return report;
            }
        }
    }
    report.passed = report.results.iter().filter(|c| c.pass).count();
    report.failed = report.results.len() - report.passed;
    if report.failed > 0 || report.results.is_empty() {
        report.exit_code = exit::FAILED;
    }
    report
}

/// One "Say: WORKS" request. `Err` only when the gateway cannot be reached at all.
async fn check(
    client: &reqwest::Client,
    url: &str,
    alias: &str,
    opts: &Options,
) -> Result<Check, reqwest::Error> {
    let mut body = json!({
        "model": alias,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
    });
    if opts.stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let mut req = client.post(format!("{url}/v1/chat/completions")).json(&body);
    if let Some(key) = &opts.key {
        req = req.bearer_auth(key.expose());
    }
    let started = Instant::now();
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) if e.is_connect() => return Err(e),
        Err(e) => {
            let latency_ms = elapsed_ms(started);
            let info = ErrorInfo {
                class: Some(if e.is_timeout() { "timeout" } else { "unavailable" }.to_owned()),
                message: format!("the request failed: {e}"),
                diagnosis: None,
                attempts: Vec::new(),
            };
            return Ok(failed(alias, None, latency_ms, info));
        }
    };
    let status = resp.status().as_u16();
    let deployment = header(&resp, "x-switchyard-deployment");
    let attempts = header(&resp, "x-switchyard-attempts");
    let class = header(&resp, "x-switchyard-error-class");
    let text = resp.text().await.unwrap_or_default();
    let latency_ms = elapsed_ms(started);
    if !(200..300).contains(&status) {
        let mut c = failed(alias, Some(status), latency_ms, error_info(class, &text));
        c.attempts = attempts;
        return Ok(c);
    }
    let parsed = if opts.stream { from_sse(&text) } else { from_json(&text) };
    let (reply, prompt, completion, error) = parsed;
    let says_works = reply.as_deref().is_some_and(|r| r.to_ascii_uppercase().contains("WORKS"));
    let pass = error.is_none() && reply.as_deref().is_some_and(|r| !r.trim().is_empty());
    let error = match (error, pass) {
        (Some(e), _) => Some(e),
        (None, false) => Some(ErrorInfo {
            class: None,
            message: "the gateway answered 200 with no text".to_owned(),
            diagnosis: None,
            attempts: Vec::new(),
        }),
        (None, true) => None,
    };
    Ok(Check {
        alias: alias.to_owned(),
        pass,
        http_status: Some(status),
        reply,
        says_works,
        prompt_tokens: prompt,
        completion_tokens: completion,
        latency_ms,
        deployment,
        attempts,
        error,
    })
}

type Parsed = (Option<String>, Option<u64>, Option<u64>, Option<ErrorInfo>);

fn from_json(text: &str) -> Parsed {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let reply = v["choices"][0]["message"]["content"].as_str().map(|s| s.trim().to_owned());
    (reply, v["usage"]["prompt_tokens"].as_u64(), v["usage"]["completion_tokens"].as_u64(), None)
}

/// The text of an SSE chat stream; an error chunk ends it with its diagnosis.
fn from_sse(text: &str) -> Parsed {
    let mut reply = String::new();
    let (mut prompt, mut completion, mut error) = (None, None, None);
    for data in text.split('\n').filter_map(|l| l.strip_prefix("data:")).map(str::trim) {
        if data == "[DONE]" {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else { continue };
        if v.get("error").is_some() {
            error = Some(error_info(v["error"]["code"].as_str().map(str::to_owned), data));
            continue;
        }
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            reply.push_str(t);
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            prompt = u["prompt_tokens"].as_u64().or(prompt);
            completion = u["completion_tokens"].as_u64().or(completion);
        }
    }
    (Some(reply.trim().to_owned()), prompt, completion, error)
}

fn error_info(class: Option<String>, body: &str) -> ErrorInfo {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = &v["error"];
    let message = e["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
        let t = body.trim();
        if t.is_empty() { "(empty body)".to_owned() } else { t.chars().take(300).collect() }
    });
    ErrorInfo {
        class: class.or_else(|| e["code"].as_str().map(str::to_owned)),
        message,
        diagnosis: e.get("diagnosis").filter(|d| d.is_object()).cloned(),
        attempts: e["attempts"].as_array().cloned().unwrap_or_default(),
    }
}

fn failed(alias: &str, status: Option<u16>, latency_ms: u64, info: ErrorInfo) -> Check {
    Check {
        alias: alias.to_owned(),
        pass: false,
        http_status: status,
        reply: None,
        says_works: false,
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms,
        deployment: None,
        attempts: None,
        error: Some(info),
    }
}

/// GW-04.
fn not_running(url: &str, error: &reqwest::Error, opts: &Options) -> Diagnosis {
    let why = if error.is_connect() {
        "nothing accepts connections there"
    } else if error.is_timeout() {
        "it did not answer in time"
    } else {
        "it could not be reached"
    };
    let log = match &opts.state_dir {
        Some(dir) => format!(
            "a gateway started with `switchyard start` logs to {} (`switchyard logs` shows it)",
            dir.display()
        ),
        None => "a gateway started with `switchyard start` logs under \
                 ~/.local/state/switchyard (`switchyard logs` shows it)"
            .to_owned(),
    };
    Diagnosis::new(
        "GW-04",
        format!("No Switchyard gateway is running at {url}: {why}."),
        format!(
            "Start it with `switchyard start --config <config>` (or `switchyard --config \
             <config>` in the foreground), or pass --url where it listens; {log}."
        ),
    )
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The human table.
pub fn text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(d) = &report.unavailable {
        let _ = writeln!(out, "{} [{}]\n  fix: {}", d.cause, d.id, d.remedy);
        return out;
    }
    if let Some(e) = &report.listing_error {
        let _ = writeln!(out, "{} cannot list its models: {}", report.url, describe(e));
        return out;
    }
    let mode = if report.stream { "streaming" } else { "non-streaming" };
    let _ = writeln!(out, "Say: WORKS through {} ({mode})", report.url);
    for c in &report.results {
        let verdict = if c.pass { "PASS" } else { "FAIL" };
        let tokens = match (c.prompt_tokens, c.completion_tokens) {
            (Some(p), Some(o)) => format!("{p} in / {o} out tokens"),
            _ => "tokens unknown".to_owned(),
        };
        let served = c.deployment.as_deref().unwrap_or("-");
        match (&c.reply, &c.error) {
            (Some(reply), None) => {
                let _ = writeln!(
                    out,
                    "  {verdict}  {}: \"{reply}\" ({tokens}, {} ms) served by {served}",
                    c.alias, c.latency_ms
                );
            }
            (_, error) => {
                let status = c.http_status.map(|s| format!("HTTP {s}, ")).unwrap_or_default();
                let _ = writeln!(out, "  {verdict}  {} ({status}{} ms)", c.alias, c.latency_ms);
                if let Some(e) = error {
                    let _ = writeln!(out, "        {}", describe(e));
                }
            }
        }
        if let Some(a) = c.attempts.as_deref().filter(|a| a.contains(',') || !c.pass) {
            let _ = writeln!(out, "        attempts: {a}");
        }
    }
    let _ = writeln!(out, "{} of {} aliases pass.", report.passed, report.results.len());
    out
}

fn describe(e: &ErrorInfo) -> String {
    let class = e.class.as_deref().unwrap_or("error");
    match &e.diagnosis {
        Some(d) => format!(
            "{class} [{}]: {}\n        fix: {}",
            d["id"].as_str().unwrap_or("?"),
            d["cause"].as_str().unwrap_or(&e.message),
            d["remedy"].as_str().unwrap_or("-")
        ),
        None => format!("{class}: {}", e.message),
    }
}
