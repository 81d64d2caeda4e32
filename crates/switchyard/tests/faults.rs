//! The upstream connection cut at every byte: of the status line and headers, of a JSON
//! answer and of a streamed one, from the Anthropic and the OpenAI dialect, asked through
//! `/v1/chat/completions` and `/v1/messages`. Every client gets a complete answer (the cut
//! came after the body), a well-formed error in its own format (before the first byte), or a
//! well-formed error event ending its stream (after it) — never a truncated JSON, never a
//! hang — and with a fallback configured, a cut before the first byte is the fallback's
//! answer. The ledger holds one row per request, the failure recorded. A stalled upstream
//! (before the headers, mid-JSON, mid-stream) ends within its timeout with NET-03.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mock_upstream::{AwsIdentity, MockUpstream, Reply, WireAt};
use serde_json::{Value, json};
use sqlx::Row as _;
use switchyard::config::{self, MapEnv};
use switchyard::ledger::{Ledger, Settings};
use switchyard::server::{self, Handle, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MASTER: &str = "sk-gw-faults-0123456789";
const KEY: &str = "sk-upstream-faults-0000000000";
const AWS_KEY: &str = "AKIAMOCKFAULTS000001";
const AWS_SECRET: &str = "mockFaultsSecretAccessKey000000000000000";
const BEDROCK: &str = "anthropic.claude-3-haiku-20240307-v1:0";
/// Concurrent lanes, each a mock and a gateway of its own: a lane's requests go one at a
/// time, so the fault a request meets is the one scripted for it.
const LANES: usize = 4;
/// Longer than any answer may take here: reaching it is a hang, and fails the test.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

fn yaml(url: &str, timeouts: &str) -> String {
    let dep = |alias: &str, id: &str, model: &str, base: &str| {
        format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: {model}\n      api_key: {KEY}\n      api_base: {base}\n{timeouts}    model_info:\n      id: {id}\n"
        )
    };
    let oai_base = format!("{url}/v1");
    let mut out = "model_list:\n".to_owned();
    out += &dep("ant", "ant-1", "anthropic/claude-haiku-4-5", url);
    out += &dep("oai", "oai-1", "openai/gpt-4o-mini", &oai_base);
    out += &dep("ant-fb", "ant-fb-1", "anthropic/claude-haiku-4-5", url);
    out += &dep("oai-fb", "oai-fb-1", "openai/gpt-4o-mini", &oai_base);
    out += &dep("backup", "backup-1", "anthropic/claude-haiku-4-5", url);
    // Bedrock: InvokeModelWithResponseStream and ConverseStream, AWS event-stream framing.
    let aws = format!(
        "      aws_region_name: us-east-1\n      aws_bedrock_runtime_endpoint: {url}\n      aws_access_key_id: {AWS_KEY}\n      aws_secret_access_key: {AWS_SECRET}\n{timeouts}"
    );
    for (alias, model) in [("bed", BEDROCK), ("bconv", &format!("converse/{BEDROCK}"))] {
        out += &format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: bedrock/{model}\n{aws}    model_info:\n      id: {alias}-1\n"
        );
    }
    out += &format!(
        "router_settings:\n  num_retries: 0\n  disable_cooldowns: true\n  fallbacks: [{{\"ant-fb\": [\"backup\"]}}, {{\"oai-fb\": [\"backup\"]}}]\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    out
}

struct Lane {
    mock: MockUpstream,
    gw: Handle,
}

async fn lane(ledger: &Ledger, timeouts: &str) -> Lane {
    let mock = MockUpstream::builder().api_key(KEY).start().await;
    mock.aws().identity(AwsIdentity::new(AWS_KEY, AWS_SECRET));
    let cfg = config::load_from_str(
        &yaml(&mock.url(), timeouts),
        Path::new("faults.yaml"),
        &MapEnv::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gw = server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap();
    gw.state.set_ledger(ledger.clone());
    Lane { mock, gw }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Chat,
    Messages,
}

#[derive(Clone, Debug)]
struct Case {
    id: String,
    client: Client,
    alias: &'static str,
    stream: bool,
    at: WireAt,
    /// Where the answer is whole on the wire: the end of a JSON body, the end of a stream's
    /// last event (only the chunked body's terminator follows).
    whole_at: usize,
    /// Where a stream's first event has arrived whole on the wire: a cut before it is before
    /// the client's first byte, so a fallback still serves.
    first_event: usize,
}

fn request(client: Client, alias: &str, stream: bool) -> (&'static str, Value) {
    let messages = json!([{"role": "user", "content": "Say: WORKS"}]);
    match client {
        Client::Chat => (
            "/v1/chat/completions",
            json!({"model": alias, "stream": stream, "max_tokens": 16, "messages": messages}),
        ),
        Client::Messages => (
            "/v1/messages",
            json!({"model": alias, "stream": stream, "max_tokens": 16, "messages": messages}),
        ),
    }
}

/// What the client got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The whole answer, from this deployment.
    Answer(String),
    /// An error before the first byte, in the client's format.
    Error,
    /// An error event ending a stream that had begun.
    StreamError,
}

fn error_shape(client: Client, v: &Value) -> Result<(), String> {
    let ok = match client {
        Client::Chat => v["error"]["message"].is_string() && v["error"]["type"].is_string(),
        Client::Messages => {
            v["type"] == "error"
                && v["error"]["type"].is_string()
                && v["error"]["message"].is_string()
        }
    };
    if ok { Ok(()) } else { Err(format!("not an error in the client's format: {v}")) }
}

/// Judges one answer: a complete one, or a well-formed error, or the reason it is neither.
fn judge(
    client: Client,
    stream: bool,
    status: u16,
    deployment: &str,
    body: &[u8],
) -> Result<Outcome, String> {
    let text = std::str::from_utf8(body).map_err(|_| "not UTF-8".to_owned())?;
    if status != 200 || !stream {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("status {status}, not JSON ({e}): {text}"))?;
        if status != 200 {
            error_shape(client, &v)?;
            return Ok(Outcome::Error);
        }
        let content = match client {
            Client::Chat => &v["choices"][0]["message"]["content"],
            Client::Messages => &v["content"][0]["text"],
        };
        return if content == "WORKS" {
            Ok(Outcome::Answer(deployment.to_owned()))
        } else {
            Err(format!("a 200 without the whole answer: {text}"))
        };
    }
    let events: Vec<&str> = text.split("\n\n").collect();
    let (last, events) = events.split_last().unwrap();
    if !last.is_empty() {
        return Err(format!("the stream ends mid-event: {text:?}"));
    }
    match client {
        Client::Chat => {
            let mut datas = Vec::new();
            for e in events {
                let data = e
                    .strip_prefix("data: ")
                    .ok_or_else(|| format!("not a data line: {e:?} in {text:?}"))?;
                datas.push(data);
            }
            let (done, chunks) = datas.split_last().ok_or("an empty stream")?;
            if *done != "[DONE]" {
                return Err(format!("the stream does not end with [DONE]: {text:?}"));
            }
            let mut content = String::new();
            let mut finished = false;
            for (i, c) in chunks.iter().enumerate() {
                let v: Value =
                    serde_json::from_str(c).map_err(|e| format!("chunk not JSON ({e}): {c}"))?;
                if v.get("error").is_some() {
                    error_shape(client, &v)?;
                    if i + 1 != chunks.len() {
                        return Err(format!("an error chunk before the end: {text:?}"));
                    }
                    return Ok(Outcome::StreamError);
                }
                if let Some(s) = v["choices"][0]["delta"]["content"].as_str() {
                    content.push_str(s);
                }
                finished |= v["choices"][0]["finish_reason"].is_string();
            }
            if content == "WORKS" && finished {
                Ok(Outcome::Answer(deployment.to_owned()))
            } else {
                Err(format!("a stream that neither completes nor fails: {text:?}"))
            }
        }
        Client::Messages => {
            let mut content = String::new();
            let mut parsed = Vec::new();
            for e in events {
                let mut lines = e.lines();
                let name = lines
                    .next()
                    .and_then(|l| l.strip_prefix("event: "))
                    .ok_or_else(|| format!("no event line: {e:?} in {text:?}"))?;
                let data = lines
                    .next()
                    .and_then(|l| l.strip_prefix("data: "))
                    .ok_or_else(|| format!("no data line: {e:?}"))?;
                let v: Value = serde_json::from_str(data)
                    .map_err(|err| format!("data not JSON ({err}): {data}"))?;
                if let Some(s) = v["delta"]["text"].as_str() {
                    content.push_str(s);
                }
                parsed.push((name, v));
            }
            let (name, v) = parsed.last().ok_or("an empty stream")?;
            match *name {
                "error" => {
                    error_shape(client, v)?;
                    Ok(Outcome::StreamError)
                }
                "message_stop" if content == "WORKS" => Ok(Outcome::Answer(deployment.to_owned())),
                _ => Err(format!("a stream that neither completes nor fails: {text:?}")),
            }
        }
    }
}

/// Sends one request; the answer read to its end within [`CLIENT_TIMEOUT`].
async fn send(
    http: &reqwest::Client,
    gw: &Handle,
    id: &str,
    client: Client,
    alias: &str,
    stream: bool,
) -> Result<(u16, String, Vec<u8>), String> {
    let (path, body) = request(client, alias, stream);
    let work = async {
        let resp = http
            .post(format!("{}{path}", gw.url()))
            .bearer_auth(MASTER)
            .header("anthropic-version", "2023-06-01")
            .header("x-request-id", id)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = resp.status().as_u16();
        let deployment = resp
            .headers()
            .get("x-switchyard-deployment")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.bytes().await.map_err(|e| format!("the answer broke off: {e}"))?;
        Ok((status, deployment, bytes.to_vec()))
    };
    tokio::time::timeout(CLIENT_TIMEOUT, work)
        .await
        .map_err(|_| "no answer in time: a hang".to_owned())?
}

/// The answer the mock sends the gateway for `client`'s request, as raw bytes on the wire:
/// (head length, body length, where the first event's chunk starts).
async fn wire_shape(
    lane: &Lane,
    client: Client,
    alias: &str,
    stream: bool,
) -> (usize, usize, usize) {
    let http = reqwest::Client::new();
    let before = lane.mock.received().len();
    let id = format!("probe-{client:?}-{alias}-{stream}");
    let (status, _, _) = send(&http, &lane.gw, &id, client, alias, stream).await.unwrap();
    assert_eq!(status, 200);
    let sent = lane.mock.received()[before].clone();
    let mut raw = format!("{} {}", sent.method, sent.path);
    if let Some(q) = &sent.query {
        raw += &format!("?{q}");
    }
    raw += " HTTP/1.1\r\n";
    for (name, value) in &sent.headers {
        if name != "connection" && name != "content-length" {
            raw += &format!("{name}: {}\r\n", value.to_str().unwrap());
        }
    }
    raw += &format!("connection: close\r\ncontent-length: {}\r\n\r\n", sent.raw_body.len());
    let mut tcp = tokio::net::TcpStream::connect(lane.mock.addr()).await.unwrap();
    tcp.write_all(raw.as_bytes()).await.unwrap();
    tcp.write_all(&sent.raw_body).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let head = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &answer[head..];
    // The first chunk (`<size>\r\n<data>\r\n`) is the first event: the mock flushes each
    // on its own.
    let first_event = if stream {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap(), 16).unwrap();
        line + 2 + size
    } else {
        body.len()
    };
    (head, body.len(), first_event)
}

/// Row per request id: (status, model_id, metadata).
async fn ledger_rows(dir: &Path) -> Vec<(String, String, String, Value)> {
    let url = format!("sqlite://{}", dir.join("ledger.sqlite3").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let rows =
        sqlx::query(r#"SELECT request_id, status, model_id, metadata FROM "LiteLLM_SpendLogs""#)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.iter()
        .map(|r| {
            let meta: String = r.get("metadata");
            (
                r.get("request_id"),
                r.get("status"),
                r.get::<Option<String>, _>("model_id").unwrap_or_default(),
                serde_json::from_str(&meta).unwrap(),
            )
        })
        .collect()
}

/// Runs every case on the lanes, `LANES` at a time; returns each case with its outcome.
async fn run(lanes: Vec<Lane>, cases: Vec<Case>) -> Vec<(Case, Result<Outcome, String>)> {
    let queue = Arc::new(Mutex::new(cases));
    let mut workers = Vec::new();
    for lane in lanes {
        let queue = Arc::clone(&queue);
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut done = Vec::new();
            loop {
                let Some(case) = queue.lock().unwrap().pop() else { break };
                let reply = Reply::echo().cut_at(case.at);
                lane.mock.push(reply);
                let got = send(&http, &lane.gw, &case.id, case.client, case.alias, case.stream)
                    .await
                    .and_then(|(status, dep, body)| {
                        judge(case.client, case.stream, status, &dep, &body)
                    });
                assert_eq!(lane.mock.pending(), 0, "{case:?}: the scripted reply was not used");
                done.push((case, got));
            }
            drop(lane);
            done
        }));
    }
    let mut out = Vec::new();
    for w in workers {
        out.extend(w.await.unwrap());
    }
    out
}

/// What one every-byte run covers: per client surface, alias and mode, every cut.
struct Plan {
    clients: &'static [Client],
    aliases: &'static [&'static str],
    streams: &'static [bool],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_byte_of_an_answer_cut_gives_an_answer_or_a_well_formed_error() {
    every_byte(Plan {
        clients: &[Client::Chat, Client::Messages],
        aliases: &["ant", "oai", "ant-fb", "oai-fb"],
        streams: &[false, true],
    })
    .await;
}

/// Bedrock's event-stream (InvokeModelWithResponseStream, ConverseStream) cut at every byte:
/// a binary framing with a CRC per message, where a cut frame must end the client's stream
/// with an error event, never a partial one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_byte_of_a_bedrock_event_stream_cut_gives_an_answer_or_a_well_formed_error() {
    every_byte(Plan {
        clients: &[Client::Chat, Client::Messages],
        aliases: &["bed", "bconv"],
        streams: &[true],
    })
    .await;
}

// The tally of outcomes is printed for whoever reads a run with --nocapture.
#[allow(clippy::print_stderr)]
async fn every_byte(plan: Plan) {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let settings =
        Settings { database_url: None, state_dir: dir.path().to_owned(), retention: None };
    let ledger = Ledger::open(&settings).unwrap();
    let mut lanes = Vec::new();
    for _ in 0..LANES {
        lanes.push(lane(&ledger, "").await);
    }
    let mut cases = Vec::new();
    let mut shapes = Vec::new();
    for &client in plan.clients {
        for &stream in plan.streams {
            for &alias in plan.aliases {
                let (head, wire_len, first_event) =
                    wire_shape(&lanes[0], client, alias, stream).await;
                shapes.push(format!(
                    "{client:?}/{alias}/stream={stream}: head {head}, body {wire_len}"
                ));
                // The last chunk's CRLF and the terminating `0\r\n\r\n`.
                let whole_at = if stream { wire_len - 7 } else { wire_len };
                // Cut in the head, the gateway has sent nothing yet whatever the client's
                // format or the fallback: every head byte once per dialect and mode.
                let fallback = alias.ends_with("-fb");
                let head = if !fallback && client == Client::Chat { head } else { 0 };
                let heads = (0..head).map(WireAt::Head);
                // Every byte where the outcome turns (the first events, the end); elsewhere,
                // with a fallback or a second client surface, every third or second one: the
                // run stays within a minute.
                let stride = match (fallback, client, stream) {
                    (true, ..) => 3,
                    (false, Client::Messages, true) => 2,
                    _ => 1,
                };
                let bodies = (0..=wire_len + 1)
                    .filter(|n| *n < 250 || *n + 16 > wire_len || n % stride == 0)
                    .map(WireAt::Body);
                for at in heads.chain(bodies) {
                    let at_id = match at {
                        WireAt::Head(n) => format!("head{n}"),
                        WireAt::Body(n) => format!("body{n}"),
                    };
                    let id = format!("{client:?}-{alias}-{stream}-{at_id}");
                    cases.push(Case { id, client, alias, stream, at, whole_at, first_event });
                }
            }
        }
    }
    let total = cases.len();
    let results = run(lanes, cases).await;
    eprintln!("{total} cuts in {:?}\n{}", started.elapsed(), shapes.join("\n"));
    assert_eq!(results.len(), total);

    let mut problems = Vec::new();
    for (case, got) in &results {
        let fallback = case.alias.ends_with("-fb");
        let primary = format!("{}-1", case.alias);
        let whole = matches!(case.at, WireAt::Body(n) if n >= case.whole_at);
        let before_first_byte = match case.at {
            WireAt::Head(_) => true,
            WireAt::Body(n) => n < case.first_event,
        };
        let expected = match (got, whole, fallback, before_first_byte) {
            (Err(e), ..) => Err(e.clone()),
            (Ok(Outcome::Answer(d)), true, ..) if *d == primary => Ok(()),
            (Ok(Outcome::Answer(d)), false, true, true) if d == "backup-1" => Ok(()),
            (Ok(Outcome::Error), false, false, true) => Ok(()),
            // After the first event: an error event ends the stream, or (when the provider
            // waits for more than one event before it commits) the cut is still before the
            // client's first byte.
            (Ok(Outcome::StreamError), false, _, false) => Ok(()),
            (Ok(Outcome::Answer(d)), false, true, false) if d == "backup-1" => Ok(()),
            (Ok(Outcome::Error), false, false, false) => Ok(()),
            (Ok(other), ..) => Err(format!("unexpected {other:?}")),
        };
        if let Err(e) = expected {
            problems.push(format!("{}: {e}", case.id));
        }
    }
    let mut tally = std::collections::BTreeMap::<String, usize>::new();
    for (case, got) in &results {
        let got = match got {
            Ok(Outcome::Answer(d)) => format!("answer from {d}"),
            Ok(o) => format!("{o:?}"),
            Err(_) => "wrong".to_owned(),
        };
        let mode = if case.stream { "stream" } else { "json" };
        *tally.entry(format!("{:?} {} {mode}: {got}", case.client, case.alias)).or_default() += 1;
    }
    eprintln!("{tally:#?}");
    assert!(
        problems.is_empty(),
        "{} of {total} cases wrong; first ones:\n{}",
        problems.len(),
        problems.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
    );

    // One ledger row per request (the probes included), each failure recorded.
    let probes = shapes.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        ledger.flush().await;
        let rows = ledger_rows(dir.path()).await;
        if rows.len() >= total + probes || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rows: std::collections::HashMap<String, (String, String, Value)> =
        rows.into_iter().map(|(id, status, model, meta)| (id, (status, model, meta))).collect();
    let missing: Vec<String> = results
        .iter()
        .filter(|(c, _)| !rows.contains_key(&c.id))
        .map(|(c, got)| format!("{}: {got:?}", c.id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} requests without a ledger row:\n{}",
        missing.len(),
        missing.join("\n")
    );
    assert_eq!(rows.len(), total + probes, "{}", shapes.join("\n"));
    for (case, got) in &results {
        let row = &rows[&case.id];
        match got {
            Ok(Outcome::Answer(d)) => {
                assert_eq!((row.0.as_str(), row.1.as_str()), ("success", d.as_str()), "{row:?}");
                if d == "backup-1" {
                    let first = &row.2["attempts"][0];
                    assert_eq!(first["model_id"], format!("{}-1", case.alias), "{row:?}");
                }
            }
            _ => {
                assert_eq!(row.0, "failure", "{}: {row:?}", case.id);
                let class = &row.2["error_information"]["error_class"];
                assert!(class.as_str().is_some_and(|c| !c.is_empty()), "{row:?}");
            }
        }
    }
    ledger.close(Duration::from_secs(5)).await;
}

/// A stalled upstream ends within the deployment's `timeout` (a JSON answer) or
/// `stream_timeout` (the first event, the gap between events) with NET-03, in the client's
/// format, and a failure row in the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upstream_ends_within_its_timeout_with_net03() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        Settings { database_url: None, state_dir: dir.path().to_owned(), retention: None };
    let ledger = Ledger::open(&settings).unwrap();
    let timeouts = "      timeout: 1\n      stream_timeout: 1\n";
    // (client, alias, stream, where it stalls, what the client should see)
    let mut cases = Vec::new();
    for client in [Client::Chat, Client::Messages] {
        for alias in ["ant", "oai"] {
            cases.push((client, alias, false, WireAt::Head(0), Outcome::Error));
            cases.push((client, alias, false, WireAt::Body(40), Outcome::Error));
            cases.push((client, alias, true, WireAt::Head(0), Outcome::Error));
            // Past the first events, before the end.
            cases.push((client, alias, true, WireAt::Body(600), Outcome::StreamError));
        }
    }
    let mut tasks = Vec::new();
    for (i, (client, alias, stream, at, want)) in cases.into_iter().enumerate() {
        let lane = lane(&ledger, timeouts).await;
        tasks.push(tokio::spawn(async move {
            let id = format!("stall-{i}");
            lane.mock.push(Reply::echo().stall_at(at));
            let http = reqwest::Client::new();
            let (status, dep, body) = send(&http, &lane.gw, &id, client, alias, stream)
                .await
                .unwrap_or_else(|e| panic!("{client:?} {alias} stream={stream} {at:?}: {e}"));
            let what = format!("{client:?} {alias} stream={stream} {at:?}");
            let got = judge(client, stream, status, &dep, &body)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, want, "{what}");
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("NET-03") && text.contains("timeout"), "{what}: {text}");
            if want == Outcome::Error {
                assert_eq!(status, 504, "{what}: {text}");
            }
            id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ledger.flush().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let rows = loop {
        ledger.flush().await;
        let rows = ledger_rows(dir.path()).await;
        if rows.len() >= ids.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rows.len(), ids.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row.1, "failure", "{row:?}");
        assert_eq!(row.3["error_information"]["error_class"], "timeout", "{row:?}");
    }
    ledger.close(Duration::from_secs(5)).await;
}
