//! No secret leaves the gateway. The real binary runs with canary secrets everywhere a user
//! puts one — the master key and provider keys in the config, a provider key through
//! `os.environ/` from an env file, an AWS profile's access key id, secret and session token,
//! Redis and PostgreSQL passwords, the OTLP exporter's header, virtual keys, a wrong key a
//! client sends, an upstream that echoes the key in its error — at debug log level, with the
//! ledger on PostgreSQL, the response cache on Redis, traces to a collector here and metrics
//! on. Then every feature is driven (both surfaces, JSON and streams, failures and their
//! diagnoses, health, key and spend routes, the dashboard API, `doctor`, `status`, `config
//! check`, `spend`, `logs`) and everything the gateway wrote is searched for the canaries:
//! answers with their headers, logs, command output, metrics, spans, every `LiteLLM_*` row,
//! the Redis entries and the state directory's files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ledger_support::{TestDb, eventually};
use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply};
use serde_json::{Value, json};
use sqlx::Row as _;

/// Every canary carries this marker past what its safe prefix shows (`Secret::safe_prefix`),
/// so a search for the marker finds any fragment of any canary a diagnosis should not show.
const MARK: &str = "c4n4ry";

const MASTER: &str = "sk-sweep-MASTERc4n4ry7Hq2Zx9Lw3";
const CONFIG_KEY: &str = "sk-ant-api03-Cfgc4n4ry8Rt5Vb1Nm6Pq";
const ENV_FILE_KEY: &str = "sk-proj-EnvKc4n4ry2Gh7Jk4Lz0Wd";
const REVOKED_KEY: &str = "sk-ant-api03-Badc4n4ry5Ty8Ui3Op6As";
const ECHOED_KEY: &str = "sk-ant-api03-Echoc4n4ry1Df4Gh7Jk0L";
const WRONG_CLIENT_KEY: &str = "sk-sweep-Wr0ngc4n4ry6Mn2Bv8Cx";
const AWS_KEY_ID: &str = "ASIAC4N4RY1D7Q2X9LMZ";
const AWS_SECRET: &str = "SecretAKc4n4ry/9Lm2Qx7Rt4Vb8Nz1Pw6Ks3";
const AWS_TOKEN: &str = "IQoJb3Jpc4n4rySessionToken//Zm9vYmFy==";
const REDIS_PASSWORD: &str = "RedisPwdc4n4ry-Hy6Tg3Fr9";
const PG_PASSWORD: &str = "PgPasswdc4n4ry-Jk8Lm2Nb5";
const OTLP_TOKEN: &str = "OtlpBearc4n4ry-Qw3Er7Ty1";
const BEDROCK_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
/// A provider key of 8 characters, the shortest cut out of an upstream's words verbatim.
const SHORT_KEY: &str = "c4n4ryS9";
/// Static keys of a Bedrock deployment whose upstream quotes them when it refuses.
const BEDROCK_KEY_ID: &str = "AKIAC4N4RY5W8E3K7QXB";
const BEDROCK_SECRET: &str = "BedSecretc4n4ry/7Hn2Kq9Lw4Xv6Zp1Rt8Y";
const BEDROCK_TOKEN: &str = "IQoJb3JpBedc4n4rySessionTok//Zm9vYmFy==";

const CANARIES: [&str; 16] = [
    MASTER,
    CONFIG_KEY,
    ENV_FILE_KEY,
    REVOKED_KEY,
    ECHOED_KEY,
    WRONG_CLIENT_KEY,
    AWS_KEY_ID,
    AWS_SECRET,
    AWS_TOKEN,
    REDIS_PASSWORD,
    PG_PASSWORD,
    OTLP_TOKEN,
    SHORT_KEY,
    BEDROCK_KEY_ID,
    BEDROCK_SECRET,
    BEDROCK_TOKEN,
];

/// A SigV4 refusal as AWS words it, then the canonical request and string to sign it quotes
/// (the signed headers' values: the session token), after a proxy's note quoting the
/// credential scope, the signature and the secret.
fn signature_mismatch() -> String {
    format!(
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. (proxy: Credential={BEDROCK_KEY_ID}/20260101/\
         us-east-1/bedrock/aws4_request, Signature=9f2c0e4b7a1d3c5e8f6a2b4d9c1e3f5a7b9d2c4e6f8a1b3d5c7e9f2a4b6d8c0e, \
         secret {BEDROCK_SECRET})\n\nThe Canonical String for this request should have been\n'POST\n\
         /model/{BEDROCK_MODEL}/invoke\n\ncontent-type:application/json\nhost:127.0.0.1\n\
         x-amz-date:20260101T000000Z\nx-amz-security-token:{BEDROCK_TOKEN}\n\n\
         content-type;host;x-amz-date;x-amz-security-token\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'\n\nThe String-to-Sign \
         should have been\n'AWS4-HMAC-SHA256\n20260101T000000Z\n20260101/us-east-1/bedrock/\
         aws4_request\n7d4f2b8e1c6a9d3f5b2e8c4a1f7d3b9e5c2a8f4d1b7e3c9a5f2d8b4e1c7a3f9d'\n"
    )
}

// ---------------------------------------------------------------------------------------
// Where the gateway's output is gathered, and the search.

/// Everything collected, each piece with where it came from.
#[derive(Default)]
struct Haystack {
    pieces: Vec<(String, String)>,
}

impl Haystack {
    fn add(&mut self, place: impl Into<String>, text: impl Into<String>) {
        self.pieces.push((place.into(), text.into()));
    }

    fn add_bytes(&mut self, place: impl Into<String>, bytes: &[u8]) {
        self.add(place, String::from_utf8_lossy(bytes).into_owned());
    }

    /// Every place that holds the marker, or 12 consecutive characters of a virtual key.
    fn leaks(&self, virtual_keys: &[String]) -> Vec<String> {
        let mut found = Vec::new();
        for (place, text) in &self.pieces {
            let lower = text.to_lowercase();
            if let Some(at) = lower.find(MARK) {
                found.push(format!("{place}: …{}…", context(&lower, at)));
            }
            for key in virtual_keys {
                let bytes = key.as_bytes();
                for window in bytes.windows(12) {
                    let window = std::str::from_utf8(window).unwrap();
                    if let Some(at) = text.find(window) {
                        found.push(format!(
                            "{place}: a virtual key's `{window}`: …{}…",
                            context(text, at)
                        ));
                        break;
                    }
                }
            }
        }
        found
    }

    fn len(&self) -> usize {
        self.pieces.iter().map(|(_, t)| t.len()).sum()
    }
}

/// Up to 80 bytes either side of `at`, cut at character boundaries.
fn context(text: &str, at: usize) -> String {
    let mut start = at.saturating_sub(80);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 80).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[start..end].replace('\n', "⏎")
}

/// An OTLP/HTTP collector that keeps each export's raw protobuf: strings travel as their
/// UTF-8 bytes, so the search needs no decoding.
#[derive(Clone, Default)]
struct Collector {
    bodies: Arc<Mutex<Vec<Bytes>>>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
}

async fn receive(State(c): State<Collector>, headers: HeaderMap, body: Bytes) -> StatusCode {
    c.headers.lock().unwrap().push(headers);
    c.bodies.lock().unwrap().push(body);
    StatusCode::OK
}

async fn start_collector() -> (Collector, String) {
    let collector = Collector::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(receive))
        .with_state(collector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (collector, url)
}

// ---------------------------------------------------------------------------------------
// The gateway's files and process.

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    env_file: PathBuf,
    state: PathBuf,
    env: Vec<(String, String)>,
}

impl Setup {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The binary with exactly the environment a user's shell would give it here.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.path("home"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command off the async workers; its output joins the haystack. Returns the exit
    /// code, stdout, and both streams together.
    async fn run(&self, hay: &mut Haystack, args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.cmd(args);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        hay.add(format!("`switchyard {}` stdout", args.join(" ")), stdout.clone());
        hay.add(format!("`switchyard {}` stderr", args.join(" ")), stderr.clone());
        let both = format!("{stdout}{stderr}");
        (out.status.code().unwrap_or(-1), stdout, both)
    }

    fn config_args(&self) -> Vec<String> {
        vec![
            "--config".into(),
            self.config.display().to_string(),
            "--env-file".into(),
            self.env_file.display().to_string(),
        ]
    }
}

struct Mocks {
    /// Anthropic API that takes CONFIG_KEY (so REVOKED_KEY is refused), and AWS.
    anthropic: MockUpstream,
    /// OpenAI API that takes ENV_FILE_KEY.
    openai: MockUpstream,
    /// Anthropic API that answers every call with a 401 quoting the key it was sent.
    echo: MockUpstream,
    /// OpenAI API that answers every call with a 401 quoting SHORT_KEY.
    short_echo: MockUpstream,
    /// Bedrock runtime that refuses every call's signature, quoting what it was signed with.
    aws_echo: MockUpstream,
}

fn yaml(m: &Mocks, db: &str, namespace: &str) -> String {
    let a = m.anthropic.url();
    let o = m.openai.url();
    let e = m.echo.url();
    let se = m.short_echo.url();
    let ae = m.aws_echo.url();
    format!(
        "model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {CONFIG_KEY}
      api_base: {a}
    model_info:
      id: cheap-1
  - model_name: balanced
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/SWEEP_OPENAI_KEY
      api_base: {o}/v1
    model_info:
      id: balanced-1
  - model_name: frontier
    litellm_params:
      model: bedrock/{BEDROCK_MODEL}
      aws_profile_name: sweep
      aws_region_name: us-east-1
    model_info:
      id: frontier-1
  - model_name: revoked
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: {REVOKED_KEY}
      api_base: {a}
    model_info:
      id: revoked-1
  - model_name: echoing
    litellm_params:
      model: anthropic/claude-opus-4-1
      api_key: {ECHOED_KEY}
      api_base: {e}
    model_info:
      id: echoing-1
  - model_name: short
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: {SHORT_KEY}
      api_base: {se}/v1
    model_info:
      id: short-1
  - model_name: bedrock-echoing
    litellm_params:
      model: bedrock/{BEDROCK_MODEL}
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: {ae}
      aws_access_key_id: {BEDROCK_KEY_ID}
      aws_secret_access_key: {BEDROCK_SECRET}
      aws_session_token: {BEDROCK_TOKEN}
    model_info:
      id: bedrock-echoing-1
router_settings:
  num_retries: 0
  disable_cooldowns: true
  redis_host: 127.0.0.1
  redis_port: 6379
  redis_password: {REDIS_PASSWORD}
litellm_settings:
  callbacks: [\"otel\"]
  cache: true
  cache_params:
    type: redis
    host: 127.0.0.1
    port: 6379
    namespace: {namespace}
general_settings:
  master_key: {MASTER}
  database_url: {db}
  redis_key_prefix: \"{namespace}-router:\"
"
    )
}

// ---------------------------------------------------------------------------------------
// HTTP, every answer kept.

struct Client {
    url: String,
    http: reqwest::Client,
}

impl Client {
    async fn call(
        &self,
        hay: &mut Haystack,
        method: &str,
        path: &str,
        auth: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, String, HeaderMap) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.url));
        for (name, value) in auth {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let shown: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        hay.add(format!("{method} {path} → {status}"), format!("{shown}\n{text}"));
        (status, text, headers)
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn chat(model: &str, stream: bool, say: &str) -> Value {
    json!({"model": model, "stream": stream, "user": "sweep-user",
           "metadata": {"tags": ["team:sweep", "job:canary"]},
           "messages": [{"role": "user", "content": format!("Say: {say}")}]})
}

fn messages(model: &str, stream: bool, say: &str) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 64,
           "metadata": {"user_id": "sweep-user"},
           "messages": [{"role": "user", "content": format!("Say: {say}")}]})
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_secret_appears_anywhere_the_gateway_writes() {
    for canary in CANARIES {
        let shown = switchyard::secret::Secret::new(canary).safe_prefix().to_lowercase();
        assert!(
            canary.to_lowercase().contains(MARK) && !shown.contains(MARK),
            "{canary} carries the marker past its safe prefix"
        );
    }
    let mocks = Mocks {
        anthropic: MockUpstream::builder().api_key(CONFIG_KEY).record(false).start().await,
        openai: MockUpstream::builder().api_key(ENV_FILE_KEY).record(false).start().await,
        echo: MockUpstream::builder()
            .record(false)
            .default_reply(Reply::error(
                401,
                "authentication_error",
                format!("invalid x-api-key: {ECHOED_KEY} (sent as x-api-key: {ECHOED_KEY})"),
            ))
            .start()
            .await,
        short_echo: MockUpstream::builder()
            .record(false)
            .default_reply(Reply::error(
                401,
                "invalid_request_error",
                format!("Incorrect API key provided: {SHORT_KEY}."),
            ))
            .start()
            .await,
        aws_echo: MockUpstream::builder()
            .record(false)
            .default_reply(
                AwsError::new(403, "InvalidSignatureException", signature_mismatch()).into(),
            )
            .start()
            .await,
    };
    mocks
        .aws_echo
        .aws()
        .identity(AwsIdentity::new(BEDROCK_KEY_ID, BEDROCK_SECRET).session_token(BEDROCK_TOKEN));
    mocks
        .anthropic
        .aws()
        .identity(AwsIdentity::new(AWS_KEY_ID, AWS_SECRET).session_token(AWS_TOKEN));
    let (collector, collector_url) = start_collector().await;
    let db = TestDb::create().await;
    let db_url = format!("postgres://postgres:{PG_PASSWORD}@127.0.0.1:5432/{}", db.name);
    let namespace = format!("sy-sweep-{:016x}", fastrand::u64(..));

    let dir = tempfile::tempdir().unwrap();
    for d in ["home", "inputs", "state"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let inputs = dir.path().join("inputs");
    let config = inputs.join("switchyard.yaml");
    std::fs::write(&config, yaml(&mocks, &db_url, &namespace)).unwrap();
    let env_file = inputs.join("providers.env");
    std::fs::write(&env_file, format!("export SWEEP_OPENAI_KEY='{ENV_FILE_KEY}'\n")).unwrap();
    let credentials = inputs.join("aws-credentials");
    std::fs::write(
        &credentials,
        format!(
            "[sweep]\naws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\naws_session_token = {AWS_TOKEN}\n"
        ),
    )
    .unwrap();
    let aws_config = inputs.join("aws-config");
    std::fs::write(&aws_config, "[profile sweep]\nregion = us-east-1\n").unwrap();
    let mock = mocks.anthropic.url();
    let env: Vec<(String, String)> = [
        ("HOME", dir.path().join("home").display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
        ("AWS_CONFIG_FILE", aws_config.display().to_string()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", mock.clone()),
        ("AWS_ENDPOINT_URL_STS", mock.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url.clone()),
        ("OTEL_EXPORTER_OTLP_HEADERS", format!("authorization=Bearer%20{OTLP_TOKEN}")),
        ("OTEL_BSP_SCHEDULE_DELAY", "20".into()),
        ("RUST_LOG", "debug".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let setup = Setup { state: dir.path().join("state"), dir, config, env_file, env };
    let mut hay = Haystack::default();
    let state = setup.state.display().to_string();
    let _stop = KillOnDrop(setup.state.join("switchyard.pid"));

    // The gateway in the background at debug level, its output in the state directory's log.
    let mut start = vec!["start".to_owned()];
    start.extend(setup.config_args());
    start.extend(
        ["--port", "0", "--log-level", "debug", "--state-dir", state.as_str()].map(String::from),
    );
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    let (code, _, out) = setup.run(&mut hay, &start).await;
    assert_eq!(code, 0, "start failed:\n{out}");
    let (_, status, _) = setup.run(&mut hay, &["status", "--json", "--state-dir", &state]).await;
    let status: Value = serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    let client = Client {
        url: status["url"].as_str().unwrap().to_owned(),
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };
    let master = bearer(MASTER);
    let as_master = [("authorization", master.as_str())];

    // A virtual key; its plaintext is shown once, by this answer, and by nothing else.
    let (code, generated, _) = client
        .call(
            &mut Haystack::default(),
            "POST",
            "/key/generate",
            &as_master,
            Some(json!({"key_alias": "sweep-bot"})),
        )
        .await;
    assert_eq!(code, 200, "{generated}");
    let vkey =
        serde_json::from_str::<Value>(&generated).unwrap()["key"].as_str().unwrap().to_owned();
    let as_vkey_header = bearer(&vkey);
    let as_vkey = [("authorization", as_vkey_header.as_str())];

    // Served requests on both surfaces, JSON and streams, on each provider.
    for (model, say) in [("cheap", "one"), ("balanced", "two"), ("frontier", "three")] {
        for stream in [false, true] {
            let (code, body, _) = client
                .call(
                    &mut hay,
                    "POST",
                    "/v1/chat/completions",
                    &as_master,
                    Some(chat(model, stream, say)),
                )
                .await;
            assert_eq!(code, 200, "{model} stream={stream}: {body}");
            let (code, body, _) = client
                .call(
                    &mut hay,
                    "POST",
                    "/v1/messages",
                    &[("x-api-key", MASTER), ("anthropic-version", "2023-06-01")],
                    Some(messages(model, stream, say)),
                )
                .await;
            assert_eq!(code, 200, "{model} stream={stream}: {body}");
        }
    }
    // The same request again is a cache hit.
    let (code, _, headers) = client
        .call(
            &mut hay,
            "POST",
            "/v1/chat/completions",
            &as_master,
            Some(chat("cheap", false, "one")),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(headers.get("x-switchyard-cache").map(|v| v.to_str().unwrap()), Some("hit"));
    // A virtual key's own requests.
    for stream in [false, true] {
        let (code, body, _) = client
            .call(
                &mut hay,
                "POST",
                "/v1/chat/completions",
                &as_vkey,
                Some(chat("cheap", stream, "vk")),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }

    // Failures: a wrong client key, a revoked provider key, an upstream that echoes the key.
    let wrong = bearer(WRONG_CLIENT_KEY);
    let (code, body, _) = client
        .call(
            &mut hay,
            "POST",
            "/v1/chat/completions",
            &[("authorization", wrong.as_str())],
            Some(chat("cheap", false, "x")),
        )
        .await;
    assert_eq!(code, 401, "{body}");
    let (code, body, _) = client
        .call(
            &mut hay,
            "POST",
            "/v1/messages",
            &[("x-api-key", WRONG_CLIENT_KEY), ("anthropic-version", "2023-06-01")],
            Some(messages("cheap", false, "x")),
        )
        .await;
    assert_eq!(code, 401, "{body}");
    // A Bedrock refusal mid-stream (an exception frame) quoting the same.
    mocks
        .aws_echo
        .push(AwsError::new(400, "ValidationException", signature_mismatch()).mid_stream(2));
    let (code, body, _) = client
        .call(
            &mut hay,
            "POST",
            "/v1/chat/completions",
            &as_master,
            Some(chat("bedrock-echoing", true, "x")),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("AWS-18"), "the exception frame is diagnosed: {body}");
    for model in ["revoked", "echoing", "short", "bedrock-echoing"] {
        for stream in [false, true] {
            let (code, body, _) = client
                .call(
                    &mut hay,
                    "POST",
                    "/v1/chat/completions",
                    &as_master,
                    Some(chat(model, stream, "x")),
                )
                .await;
            assert!(matches!(code, 401 | 403) || (stream && code == 200), "{model}: {code} {body}");
            let (code, body, _) = client
                .call(
                    &mut hay,
                    "POST",
                    "/v1/messages",
                    &[("x-api-key", MASTER), ("anthropic-version", "2023-06-01")],
                    Some(messages(model, stream, "x")),
                )
                .await;
            assert!(matches!(code, 401 | 403) || (stream && code == 200), "{model}: {code} {body}");
        }
    }
    let (_, body, _) = client
        .call(
            &mut hay,
            "POST",
            "/v1/chat/completions",
            &as_master,
            Some(chat("bedrock-echoing", false, "y")),
        )
        .await;
    assert!(
        body.contains("The request signature we calculated does not match"),
        "AWS's words stay, less what they quote: {body}"
    );

    batches(&client, &mut hay, &as_master).await;
    let (_, body, _) = client
        .call(
            &mut hay,
            "POST",
            "/v1/chat/completions",
            &as_master,
            Some(chat("revoked", false, "y")),
        )
        .await;
    assert!(body.contains("ANT-01"), "the revoked key is diagnosed: {body}");
    // The pass-through relays the upstream's own answer: the echoing one's, by its model.
    let relayed = messages("claude-opus-4-1", false, "x");
    let (code, body, _) = client
        .call(
            &mut hay,
            "POST",
            "/anthropic/v1/messages",
            &[("x-api-key", MASTER), ("anthropic-version", "2023-06-01")],
            Some(relayed),
        )
        .await;
    assert_eq!(code, 401, "{body}");
    assert!(
        body.contains("invalid x-api-key: sk-ant-a…"),
        "the upstream's words, less the key: {body}"
    );

    // Health, status and the admin routes.
    for path in [
        "/health",
        "/health/readiness",
        "/health/liveliness",
        "/",
        "/v1/models",
        "/model/info",
        "/config/status",
        "/spend/logs",
        "/spend/tags",
        "/global/spend/report",
        "/global/spend/logs",
        "/key/list",
        "/team/list",
        "/cache/ping",
        "/cache/stats",
    ] {
        let (code, body, _) = client.call(&mut hay, "GET", path, &as_master, None).await;
        assert!(code < 500 || path == "/health", "{path}: {code} {body}");
    }
    // `/key/info?key=` answers, as LiteLLM does, with the key it was asked about: the
    // administrator's own input. The rest of the answer is searched.
    let (code, body, _) = client
        .call(&mut Haystack::default(), "GET", &format!("/key/info?key={vkey}"), &as_master, None)
        .await;
    assert_eq!(code, 200, "{body}");
    let mut info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["key"], vkey.as_str());
    info.as_object_mut().unwrap().remove("key");
    hay.add("GET /key/info?key=… less its `key`", info.to_string());
    // A virtual key is refused the management routes (KEY-05) without its key being echoed.
    let (code, body, _) = client.call(&mut hay, "GET", "/key/info", &as_vkey, None).await;
    assert_eq!(code, 403, "{body}");
    client.call(&mut hay, "GET", "/health", &[("authorization", wrong.as_str())], None).await;

    // The dashboard, signed in with a session cookie.
    let (code, body, headers) =
        client.call(&mut hay, "POST", "/ui/api/session", &[], Some(json!({"key": MASTER}))).await;
    assert_eq!(code, 200, "{body}");
    let cookie = headers
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session = [("cookie", cookie.as_str())];
    for path in [
        "/ui/api/session",
        "/ui/api/overview",
        "/ui/api/spend",
        "/ui/api/requests",
        "/ui/api/deployments",
        "/ui/api/keys",
        "/ui/api/teams",
        "/ui/api/config",
    ] {
        let (code, body, _) = client.call(&mut hay, "GET", path, &session, None).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    for id in ["echoing-1", "revoked-1", "frontier-1"] {
        client
            .call(&mut hay, "POST", &format!("/ui/api/deployments/{id}/probe"), &session, None)
            .await;
    }
    client.call(&mut hay, "GET", "/ui/api/overview", &as_vkey, None).await;
    client
        .call(&mut hay, "POST", "/ui/api/session", &[], Some(json!({"key": WRONG_CLIENT_KEY})))
        .await;

    // The commands a user runs against the same config and gateway.
    let config_args = setup.config_args();
    let with_config = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        v.extend(config_args.iter().cloned());
        v
    };
    for args in [
        with_config(&["doctor"]),
        with_config(&["config", "check"]),
        with_config(&["spend"]),
        with_config(&["spend", "--by", "key"]),
        with_config(&["keys", "list"]),
        vec!["status".into(), "--state-dir".into(), state.clone()],
        vec!["status".into(), "--json".into(), "--state-dir".into(), state.clone()],
        vec!["cache".into(), "stats".into(), "--state-dir".into(), state.clone()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        setup.run(&mut hay, &args).await;
    }

    // Metrics, then spans once the exporter has sent them.
    client.call(&mut hay, "GET", "/metrics", &[], None).await;
    let spans = collector.clone();
    let exported = eventually(Duration::from_secs(10), || {
        std::future::ready(spans.bodies.lock().unwrap().len() > 1)
    })
    .await;
    assert!(exported, "the gateway exported no spans");
    for (i, body) in collector.bodies.lock().unwrap().iter().enumerate() {
        hay.add_bytes(format!("OTLP export {i}"), body);
    }
    let sent_to_collector = collector.headers.lock().unwrap()[0]
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        sent_to_collector,
        Some(format!("Bearer {OTLP_TOKEN}")),
        "the exporter's own header arrives"
    );

    // The ledger: every row of every LiteLLM table, once the requests are written.
    let pool = db.pool().await;
    let written = eventually(Duration::from_secs(15), || async {
        sqlx::query("SELECT count(*) AS n FROM \"LiteLLM_SpendLogs\"")
            .fetch_one(&pool)
            .await
            .map(|r| r.get::<i64, _>("n") >= 20)
            .unwrap_or(false)
    })
    .await;
    assert!(written, "the ledger rows never arrived");
    let tables: Vec<String> = sqlx::query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'LiteLLM%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.get("tablename"))
    .collect();
    assert!(tables.iter().any(|t| t == "LiteLLM_VerificationToken"), "{tables:?}");
    for table in &tables {
        let rows = sqlx::query(&format!("SELECT row_to_json(t)::text AS row FROM \"{table}\" t"))
            .fetch_all(&pool)
            .await
            .unwrap();
        for (i, row) in rows.iter().enumerate() {
            hay.add(format!("{table} row {i}"), row.get::<String, _>("row"));
        }
    }
    pool.close().await;

    // The cache's entries (and the router's keys, were it able to write any) on Redis.
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{namespace}*")).query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty(), "the cache wrote nothing under {namespace}");
    for key in &keys {
        let dumped: Vec<u8> = redis::cmd("DUMP").arg(key).query_async(&mut conn).await.unwrap();
        hay.add(format!("Redis key {key}"), key.clone());
        hay.add_bytes(format!("Redis value {key}"), &dumped);
    }

    // The log, then a stop (which drains and writes its last lines), then every file the
    // gateway left in its state directory and HOME.
    setup.run(&mut hay, &["logs", "--state-dir", &state]).await;
    let (code, _, out) = setup.run(&mut hay, &["stop", "--state-dir", &state]).await;
    assert_eq!(code, 0, "{out}");
    for root in [setup.path("state"), setup.path("home")] {
        for file in files_under(&root) {
            hay.add_bytes(format!("file {}", file.display()), &std::fs::read(&file).unwrap());
        }
    }
    let log = std::fs::read_to_string(setup.path("state").join("switchyard.log")).unwrap();
    assert!(log.contains("DEBUG"), "the gateway logged at debug level");

    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    }
    let leaks = hay.leaks(&[vkey]);
    assert!(
        leaks.is_empty(),
        "{} leak(s) in {} KB searched:\n{}",
        leaks.len(),
        hay.len() / 1024,
        leaks.join("\n")
    );
}

/// The batch APIs with requests to every kind of deployment, the failing ones included: an
/// OpenAI batch (its input file uploaded, then its output and error files read), a message
/// batch the gateway runs (two accounts), and one it forwards to Anthropic (one account).
async fn batches(client: &Client, hay: &mut Haystack, as_master: &[(&str, &str)]) {
    let models = ["cheap", "balanced", "echoing", "short", "bedrock-echoing", "revoked"];
    let input: Vec<String> = models
        .iter()
        .map(|m| {
            json!({"custom_id": format!("line-{m}"), "method": "POST",
                   "url": "/v1/chat/completions", "body": chat(m, false, "batch")})
            .to_string()
        })
        .collect();
    let boundary = "sweep-boundary";
    let upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n--{boundary}--\r\n",
        input.join("\n")
    );
    let resp = client
        .http
        .post(format!("{}/v1/files", client.url))
        .header("authorization", as_master[0].1)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    hay.add("POST /v1/files", text.clone());
    let file: Value = serde_json::from_str(&text).unwrap();
    let (code, body, _) = client
        .call(
            hay,
            "POST",
            "/v1/batches",
            as_master,
            Some(json!({"input_file_id": file["id"], "endpoint": "/v1/chat/completions",
                        "completion_window": "24h"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    let done = until(
        client,
        hay,
        as_master,
        &format!("/v1/batches/{id}"),
        "status",
        &["completed", "failed"],
    )
    .await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["request_counts"]["total"], models.len(), "{done:#}");
    for file in ["output_file_id", "error_file_id"] {
        let file = done[file].as_str().unwrap();
        let (code, body, _) =
            client.call(hay, "GET", &format!("/v1/files/{file}/content"), as_master, None).await;
        assert_eq!(code, 200, "{body}");
    }
    client.call(hay, "GET", "/v1/batches", as_master, None).await;

    let anthropic = [("x-api-key", MASTER), ("anthropic-version", "2023-06-01")];
    for models in [&["cheap", "echoing", "short", "bedrock-echoing"][..], &["cheap", "cheap"]] {
        let requests: Vec<Value> = models
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"custom_id": format!("req-{i}"), "params": messages(m, false, "mb")}))
            .collect();
        let (code, body, _) = client
            .call(
                hay,
                "POST",
                "/v1/messages/batches",
                &anthropic,
                Some(json!({ "requests": requests })),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/messages/batches/{id}");
        until(client, hay, &anthropic, &path, "processing_status", &["ended"]).await;
        let (code, body, _) =
            client.call(hay, "GET", &format!("{path}/results"), &anthropic, None).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body.lines().count(), models.len(), "{body}");
    }
    client.call(hay, "GET", "/v1/messages/batches", &anthropic, None).await;
}

/// Polls `path` until its `field` is one of `ends` (a minute at most: a loaded machine).
async fn until(
    client: &Client,
    hay: &mut Haystack,
    auth: &[(&str, &str)],
    path: &str,
    field: &str,
    ends: &[&str],
) -> Value {
    for _ in 0..300 {
        let (code, body, _) = client.call(hay, "GET", path, auth, None).await;
        assert_eq!(code, 200, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if ends.iter().any(|e| v[field] == *e) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{path} never reached {ends:?}");
}

/// Kills the background gateway if the test ends before `stop` ran.
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(&self.0).ok().and_then(|p| p.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let _ =
                switchyard::daemon::process::signal(pid, switchyard::daemon::process::Sig::Kill);
        }
    }
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
