//! Bedrock against moto's server, an AWS emulator that checks SigV4 and IAM policies and
//! answers in awsQuery XML (403, `text/html`, `<ErrorResponse><Errors><Error>…`, no
//! `x-amzn-ErrorType`) — another wire shape than the project's own mock. Each test starts
//! its own `moto_server` on a free loopback port (killed on drop), creates IAM users, keys,
//! a role and its temporary keys (`fixtures/aws/moto_iam.py`), then turns the checks on.
//! The gateway runs in process; `doctor --json` is the real binary, its STS identity check
//! pointed at moto too. Asserted: what a user sees — class, catalog id, a cause without
//! markup, a remedy that fits (never "grant bedrock:InvokeModel" for an unknown key).
//!
//! moto cannot produce an expired token (it never checks the expiry of temporary keys), so
//! that case is a fixture server answering moto's exact envelope with STS's ExpiredToken.
//!
//! moto comes from `.venv` (scripts/test builds it from tests/sdk/requirements.txt). Without
//! it these tests skip loudly — except under CI (`CI=true`), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diag_support;
mod support;

use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diag_support::{Home, MASTER, gateway, load};
use serde_json::{Value, json};
use switchyard::config::MapEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin")
}

/// Straight to the process's stderr, past the test harness's capture, so a skip is seen.
fn loud(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {text}\n");
}

/// A moto server of its own, with the IAM identities of `moto_iam.py`; killed on drop.
struct Moto {
    child: Child,
    url: String,
    iam: Value,
    /// Its stderr (werkzeug logs every request there): a file, so no pipe ever fills up.
    log: std::fs::File,
}

impl Moto {
    /// `None` (after a loud message) when moto is not installed and this is not CI.
    fn start() -> Option<Self> {
        let server = venv().join("moto_server");
        if !server.is_file() {
            let why = format!(
                "{} is missing: run scripts/test (it creates .venv from tests/sdk/requirements.txt, moto included)",
                server.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and {why}");
            }
            loud(&format!("SKIPPED: this moto emulator test did not run: {why}"));
            return None;
        }
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let log = tempfile::tempfile().unwrap();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(log.try_clone().unwrap())
                .spawn()
                .unwrap();
            let url = format!("http://127.0.0.1:{port}");
            let mut moto = Moto { child, url, iam: Value::Null, log };
            if moto.wait_ready() {
                moto.iam = moto.set_up_iam();
                return Some(moto);
            }
        }
        panic!("moto_server did not start on a free port in three tries");
    }

    /// Whether it answers; false when it died (the port was taken meanwhile).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.log.seek(SeekFrom::Start(0)).unwrap();
                self.log.read_to_string(&mut err).unwrap();
                loud(&format!("moto_server exited ({status}), trying another port: {err}"));
                return false;
            }
            let up = std::net::TcpStream::connect(self.url.trim_start_matches("http://")).is_ok();
            if up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not answer at {} within 60 s", self.url);
    }

    fn set_up_iam(&self) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/moto_iam.py");
        let out = Command::new(venv().join("python")).arg(script).arg(&self.url).output().unwrap();
        assert!(out.status.success(), "moto_iam.py: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn key(&self, who: &str) -> Keys {
        let k = &self.iam[who];
        Keys {
            id: k["id"].as_str().unwrap().to_owned(),
            secret: k["secret"].as_str().unwrap().to_owned(),
            token: k["token"].as_str().map(str::to_owned),
        }
    }

    fn arn(&self, who: &str) -> String {
        self.iam[who]["arn"].as_str().unwrap().to_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Keys {
    id: String,
    secret: String,
    token: Option<String>,
}

/// One Bedrock deployment signing with `keys`, Bedrock and STS both at `endpoint`.
fn config(home: &Home, endpoint: &str, keys: &Keys) -> PathBuf {
    config_with(home, endpoint, keys, "")
}

/// [`config`] with more `litellm_params` lines (each ending in a newline).
fn config_with(home: &Home, endpoint: &str, keys: &Keys, more: &str) -> PathBuf {
    let token = keys.token.as_ref().map(|t| format!("      aws_session_token: {t}\n"));
    let lines = format!("{}{more}", token.unwrap_or_default());
    let yaml = format!(
        "model_list:\n  - model_name: balanced\n    litellm_params:\n      model: bedrock/{MODEL}\n      \
         aws_region_name: us-east-1\n      aws_bedrock_runtime_endpoint: {endpoint}\n      \
         aws_sts_endpoint: {endpoint}\n      aws_access_key_id: {}\n      aws_secret_access_key: {}\n{}\
         \x20   model_info:\n      id: balanced-bedrock\n\
         router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n\
         general_settings:\n  master_key: {MASTER}\n",
        keys.id, keys.secret, lines
    );
    home.write("config.yaml", &yaml)
}

fn env(home: &Home) -> MapEnv {
    MapEnv::new([("HOME", home.path().to_str().unwrap()), ("AWS_EC2_METADATA_DISABLED", "true")])
}

/// What an OpenAI client receives for "Say: WORKS": status and body.
async fn ask(home: &Home, config: &Path) -> (u16, Value) {
    ask_as(home, config, false).await
}

/// [`ask`], streaming or not. A stream refused before its first event is an error body too.
async fn ask_as(home: &Home, config: &Path, stream: bool) -> (u16, Value) {
    let env = env(home);
    let gw = gateway(load(config, &[], &env), &env).await;
    let say = json!({"model": "balanced", "stream": stream,
                     "messages": [{"role": "user", "content": "Say: WORKS"}]});
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url()))
        .bearer_auth(MASTER)
        .json(&say)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

/// `switchyard doctor --json` as a user runs it: the real binary, a clean environment.
async fn doctor_json(home: &Home, config: &Path) -> Value {
    serde_json::from_str(&doctor(home, config, &["--json"]).await).unwrap()
}

/// `switchyard doctor ARGS --config CONFIG`'s stdout; it exits 1 (the alias is not served).
async fn doctor(home: &Home, config: &Path, args: &[&str]) -> String {
    let (home, config) = (home.path().to_owned(), config.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("doctor")
            .args(args)
            .arg("--config")
            .arg(config)
            .env_clear()
            .env("HOME", home)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "not served: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// No markup and no secret anywhere in what the user reads.
fn assert_clean(what: &str, shown: &Value, keys: &Keys) {
    let text = shown.to_string();
    for markup in ["<Error", "</", "<?xml", "&lt;", "Sender"] {
        assert!(!text.contains(markup), "{what} quotes `{markup}`: {text}");
    }
    assert!(!text.contains(&keys.secret), "{what} shows the secret");
    assert!(!text.contains(&keys.id), "{what} shows the whole key id");
    if let Some(token) = &keys.token {
        assert!(!text.contains(token.as_str()), "{what} shows the session token");
    }
}

/// The class, catalog id, cause and remedy the client got, checked against doctor's.
fn client_diagnosis(status: u16, body: &Value, want_status: u16, class: &str, id: &str) -> Value {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], class, "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], id, "{body}");
    body["error"]["diagnosis"].clone()
}

fn deployment(report: &Value) -> &Value {
    &report["aliases"][0]["deployments"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_not_recognised_never_a_missing_permission() {
    let Some(moto) = Moto::start() else { return };
    let home = Home::new();
    // A key moto has never issued, and moto's own temporary key with a stale session token
    // (the incident: keys exported from an earlier session).
    let mut stale = moto.key("assumed");
    stale.token = Some("IQoJb3JpZ2luX2VjStaleSessionToken".to_owned());
    let unknown = Keys {
        id: "AKIAUNKNOWN000000001".into(),
        secret: "unknownSecret0000000000000000000000000000".into(),
        token: None,
    };
    for keys in [unknown, stale] {
        let config = config(&home, &moto.url, &keys);
        let (status, body) = ask(&home, &config).await;
        let diag = client_diagnosis(status, &body, 401, "credentials_invalid", "AWS-01");
        let message = body["error"]["message"].as_str().unwrap();
        for said in [message, diag["cause"].as_str().unwrap()] {
            assert!(said.contains("AWS did not recognise the credentials"), "{said}");
            assert!(
                said.contains("(\"The security token included in the request is invalid.\")"),
                "{said}"
            );
        }
        let remedy = diag["remedy"].as_str().unwrap();
        assert!(remedy.contains("aws sts get-caller-identity"), "{remedy}");
        assert!(
            !message.contains("bedrock:InvokeModel") && !message.contains("policy"),
            "{message}"
        );
        assert_clean("the client's error", &body, &keys);
        // InvokeModelWithResponseStream is refused the same way, before the first event.
        let (status, body) = ask_as(&home, &config, true).await;
        client_diagnosis(status, &body, 401, "credentials_invalid", "AWS-01");
        assert_clean("the client's streaming error", &body, &keys);

        let report = doctor_json(&home, &config).await;
        let d = deployment(&report);
        assert_eq!(d["result"]["class"], "credentials_invalid", "{d}");
        assert_eq!(d["result"]["diagnosis"]["id"], "AWS-01");
        assert_eq!(d["result"]["provider_code"], "InvalidClientTokenId");
        assert_eq!(
            d["result"]["message"],
            "The security token included in the request is invalid."
        );
        // STS (moto too) agrees: it does not know the key either.
        assert_eq!(d["identity"]["status"], "refused", "{d}");
        assert_eq!(d["identity"]["code"], "InvalidClientTokenId");
        assert_eq!(
            d["identity"]["message"],
            "The security token included in the request is invalid."
        );
        let steps = report["next_steps"].to_string();
        assert!(!steps.contains("AWS-05") && !steps.contains("\"grant\""), "{steps}");
        assert!(!steps.contains("bedrock:InvokeModel"), "{steps}");
        assert_clean("doctor --json", &report, &keys);

        // What a person reads.
        let text = doctor(&home, &config, &[]).await;
        assert!(text.contains("FAILED credentials_invalid (AWS-01)"), "{text}");
        assert!(
            text.contains("identity: STS GetCallerIdentity refused these credentials: InvalidClientTokenId: The security token included in the request is invalid. — STS agrees with Bedrock"),
            "{text}"
        );
        assert!(!text.contains("AWS-05") && !text.contains("may not call"), "{text}");
        assert_clean("doctor", &Value::String(text), &keys);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_key_without_the_permission_is_aws05_quoting_moto_cleanly() {
    let Some(moto) = Moto::start() else { return };
    let home = Home::new();
    for who in ["noperm", "assumed"] {
        let keys = moto.key(who);
        let arn = moto.arn(who);
        let config = config(&home, &moto.url, &keys);
        let (status, body) = ask(&home, &config).await;
        let diag = client_diagnosis(status, &body, 403, "permission_denied", "AWS-05");
        let cause = diag["cause"].as_str().unwrap();
        assert!(
            cause.starts_with(&format!("{arn} may not call bedrock:InvokeModel on {MODEL} (")),
            "{cause}"
        );
        assert!(cause.contains("a permission is missing"), "{cause}");
        let remedy = diag["remedy"].as_str().unwrap();
        assert!(remedy.contains("arn:aws:bedrock:us-east-1::foundation-model/"), "{remedy}");
        assert!(remedy.contains(&format!("attach it to {arn}")), "{remedy}");
        assert_clean("the client's error", &body, &keys);
        // Streaming is its own action, and the cause names it.
        let (status, body) = ask_as(&home, &config, true).await;
        let diag = client_diagnosis(status, &body, 403, "permission_denied", "AWS-05");
        let cause = diag["cause"].as_str().unwrap();
        let stream = format!("{arn} may not call bedrock:InvokeModelWithResponseStream on ");
        assert!(cause.starts_with(&stream), "{cause}");

        let report = doctor_json(&home, &config).await;
        let d = deployment(&report);
        assert_eq!(d["result"]["diagnosis"]["id"], "AWS-05", "{d}");
        assert_eq!(d["result"]["provider_code"], "AccessDenied");
        // STS knows the key: doctor names the identity, and grants to it.
        assert_eq!(d["identity"]["status"], "known", "{d}");
        assert_eq!(d["identity"]["arn"], arn.as_str());
        assert_eq!(d["identity"]["account"], "123456789012");
        let grant = report["next_steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["action"] == "grant")
            .unwrap_or_else(|| panic!("no grant step: {}", report["next_steps"]));
        assert!(grant["text"].as_str().unwrap().contains(&arn), "{grant}");
        assert_clean("doctor --json", &report, &keys);
    }
    // The control: with the permission, moto's IAM check passes and the request reaches its
    // InvokeModel, which answers 200 with an empty `{}` (moto 5.2.5 does not emulate the
    // model): no auth class any more.
    let keys = moto.key("granted");
    let (status, body) = ask(&home, &config(&home, &moto.url, &keys)).await;
    assert_eq!((status, &body["error"]["code"]), (502, &json!("upstream_unavailable")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not a Messages response"), "{message}");
    assert_clean("the client's error", &body, &keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_aws11() {
    let Some(moto) = Moto::start() else { return };
    let home = Home::new();
    let mut keys = moto.key("noperm");
    keys.secret = "notTheSecretOfThisKey000000000000000000000".into();
    let config = config(&home, &moto.url, &keys);
    let (status, body) = ask(&home, &config).await;
    let diag = client_diagnosis(status, &body, 401, "credentials_invalid", "AWS-11");
    let cause = diag["cause"].as_str().unwrap();
    assert!(cause.contains("does not belong to the access key AKIA…"), "{cause}");
    assert_clean("the client's error", &body, &keys);

    let report = doctor_json(&home, &config).await;
    let d = deployment(&report);
    assert_eq!(d["result"]["diagnosis"]["id"], "AWS-11", "{d}");
    assert_eq!(d["result"]["provider_code"], "SignatureDoesNotMatch");
    assert_eq!(d["identity"]["code"], "SignatureDoesNotMatch", "{d}");
    assert!(
        d["identity"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The request signature we calculated")
    );
    assert_clean("doctor --json", &report, &keys);
}

/// moto's error envelope (`moto.core.exceptions._RESTError`: 403, `text/html`, no
/// `x-amzn-ErrorType`) with the code and message STS gives expired temporary credentials;
/// moto itself never checks an expiry.
const EXPIRED_AS_MOTO: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message><Type>Sender</Type></Error></Errors></ErrorResponse>";

/// Answers every request with `body` as moto answers an auth failure. No moto needed.
async fn fixture_server(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 8192];
                // Read the head and as much body as it announces.
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(head) = text.find("\r\n\r\n") {
                        let length = text[..head]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= head + 4 + length {
                            break;
                        }
                    }
                }
                let response = format!(
                    "HTTP/1.1 403 FORBIDDEN\r\nServer: Werkzeug/3.1.9 Python/3.11.7, amazon.com\r\n\
                     x-amzn-requestid: moto-fixture-1\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_in_motos_envelope_is_aws02() {
    let url = fixture_server(EXPIRED_AS_MOTO).await;
    let home = Home::new();
    let keys = Keys {
        id: "ASIAEXPIRED000000001".into(),
        secret: "expiredSecret000000000000000000000000000".into(),
        token: Some("IQoJb3JpZ2luX2VjExpiredSessionToken".into()),
    };
    let config = config(&home, &url, &keys);
    let (status, body) = ask(&home, &config).await;
    let diag = client_diagnosis(status, &body, 401, "credentials_expired", "AWS-02");
    let cause = diag["cause"].as_str().unwrap();
    assert!(
        cause.contains("(\"The security token included in the request is expired\")"),
        "{cause}"
    );
    assert!(cause.contains("(AWS request id moto-fixture-1)"), "{cause}");
    let remedy = diag["remedy"].as_str().unwrap();
    assert!(remedy.contains("cannot refresh") && remedy.contains("aws_profile_name"), "{remedy}");
    assert_clean("the client's error", &body, &keys);

    let report = doctor_json(&home, &config).await;
    let d = deployment(&report);
    assert_eq!(d["result"]["class"], "credentials_expired", "{d}");
    assert_eq!(d["result"]["provider_code"], "ExpiredToken");
    // The STS SDK cannot read moto's <Errors> wrapper; doctor reads it itself.
    assert_eq!(d["identity"]["code"], "ExpiredToken", "{d}");
    assert_eq!(d["identity"]["message"], "The security token included in the request is expired");
    assert_clean("doctor --json", &report, &keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assuming_a_role_through_moto_sts_is_classified_by_what_sts_said() {
    let Some(moto) = Moto::start() else { return };
    let home = Home::new();
    let role = format!("      aws_role_name: {}\n", moto.iam["role"].as_str().unwrap());
    // moto's STS answers in its <Errors>-wrapped XML, which the STS SDK cannot read: the
    // gateway reads the answer itself.
    let unknown = Keys {
        id: "AKIAUNKNOWN000000002".into(),
        secret: "unknownSecret0000000000000000000000000000".into(),
        token: None,
    };
    let (status, body) = ask(&home, &config_with(&home, &moto.url, &unknown, &role)).await;
    let diag = client_diagnosis(status, &body, 401, "credentials_invalid", "AWS-01");
    let cause = diag["cause"].as_str().unwrap();
    assert!(
        cause.contains(
            "InvalidClientTokenId: The security token included in the request is invalid."
        ),
        "{cause}"
    );
    assert!(cause.contains(", assuming role arn:aws:iam::123456789012:role/no-bedrock"), "{cause}");
    assert_clean("the client's error", &body, &unknown);

    // A known user without sts:AssumeRole: AWS-05 naming that action, not Bedrock's.
    let keys = moto.key("noperm");
    let (status, body) = ask(&home, &config_with(&home, &moto.url, &keys, &role)).await;
    let diag = client_diagnosis(status, &body, 403, "permission_denied", "AWS-05");
    let cause = diag["cause"].as_str().unwrap();
    let role = moto.iam["role"].as_str().unwrap();
    assert!(
        cause.starts_with(&format!(
            "{} may not call sts:AssumeRole on {role} (",
            moto.arn("noperm")
        )),
        "{cause}"
    );
    let remedy = diag["remedy"].as_str().unwrap();
    assert!(remedy.contains("trust policy") && !remedy.contains("bedrock:Invoke"), "{remedy}");
    assert_clean("the client's error", &body, &keys);
}
