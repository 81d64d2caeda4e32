//! The ledger loses nothing: the database cut mid-load (through a TCP relay this test
//! controls, never by touching the machine's server) costs no client an error, the rows
//! wait in the spool while `/health` says the ledger is degraded and how many wait, and
//! every row is in the table exactly once after the relay comes back; a spool left by an
//! earlier run is replayed at start without doubling rows; SIGTERM under load leaves a row
//! for every request the real binary served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ledger_support::*;
use mock_upstream::{MockUpstream, Reply};
use serde_json::Value;
use switchyard::ledger::Ledger;

async fn load(base: &str, prefix: &str, n: usize) {
    let client = reqwest::Client::new();
    futures_util::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                let (path, body) = match i % 3 {
                    0 => ("/v1/chat/completions", chat("good", false)),
                    1 => ("/v1/chat/completions", chat("good", true)),
                    _ => ("/v1/messages", messages("good", i % 2 == 0)),
                };
                let (status, _, _, text) =
                    call(&client, base, path, &format!("{prefix}-{i:04}"), body).await;
                assert_eq!(status, 200, "no client sees the ledger's trouble: {text}");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

async fn count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(r#"SELECT count(*) FROM "LiteLLM_SpendLogs""#).fetch_one(pool).await.unwrap()
}

async fn health(base: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_cut_mid_load_loses_and_doubles_nothing() {
    let db = TestDb::create().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let (_mock, gw, ledger) = gateway(&settings(dir.path(), Some(&db.url_at(relay.addr)))).await;
    let pool = db.pool().await;
    let base = gw.url();

    load(&base, "before", 90).await;
    let written = eventually(Duration::from_secs(10), || async {
        ledger.flush().await;
        count(&pool).await == 90
    })
    .await;
    assert!(written, "{:?}", ledger.status());

    relay.cut();
    load(&base, "during", 150).await;
    let spooled = eventually(Duration::from_secs(20), || async {
        ledger.flush().await;
        ledger.status().spooled == 150
    })
    .await;
    assert!(spooled, "{:?}", ledger.status());
    let h = health(&base, "/health?cached=true").await;
    assert_eq!(h["ledger"]["state"], "degraded", "{h}");
    assert_eq!(h["ledger"]["spooled"], 150, "{h}");
    assert_eq!(h["ledger"]["backend"], "postgres", "{h}");
    assert!(h["ledger"]["error"].is_string(), "{h}");
    let ready = health(&base, "/health/readiness").await;
    assert_eq!(ready["db"], "disconnected", "{ready}");
    assert_eq!(count(&pool).await, 90, "nothing reached the database while it was cut");
    assert!(dir.path().join("ledger-spool.jsonl").exists());

    relay.restore();
    load(&base, "after", 30).await;
    let replayed = eventually(Duration::from_secs(30), || async {
        let s = ledger.status();
        s.spooled == 0 && s.state == "ok" && count(&pool).await == 270
    })
    .await;
    assert!(replayed, "{:?}, {} rows", ledger.status(), count(&pool).await);
    let ids: Vec<String> = sqlx::query_scalar(r#"SELECT request_id FROM "LiteLLM_SpendLogs""#)
        .fetch_all(&pool)
        .await
        .unwrap();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 270);
    for prefix in ["before", "during", "after"] {
        assert!(unique.iter().any(|id| id.starts_with(prefix)));
    }
    assert_eq!(health(&base, "/health/readiness").await["db"], "connected");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_an_earlier_run_is_replayed_at_start_without_doubles() {
    let db = TestDb::create().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    relay.cut();
    let dir = tempfile::tempdir().unwrap();
    {
        // A run whose database never answered: everything ends in the spool.
        let (_mock, gw, ledger) =
            gateway(&settings(dir.path(), Some(&db.url_at(relay.addr)))).await;
        load(&gw.url(), "first-run", 40).await;
        ledger.close(Duration::from_secs(5)).await;
        assert_eq!(ledger.status().spooled, 40, "{:?}", ledger.status());
        gw.shutdown().await.unwrap();
    }
    // A crash mid-replay had already committed some of those rows.
    let pool = db.pool().await;
    sqlx::raw_sql(switchyard::ledger::postgres::CREATE_TABLE).execute(&pool).await.unwrap();
    sqlx::query(
        r#"INSERT INTO "LiteLLM_SpendLogs" (request_id, call_type, "startTime", "endTime")
           VALUES ('first-run-0000', 'acompletion', now(), now()),
                  ('first-run-0001', 'acompletion', now(), now())"#,
    )
    .execute(&pool)
    .await
    .unwrap();

    let ledger = Ledger::open(&settings(dir.path(), Some(&db.url()))).unwrap();
    assert_eq!(ledger.status().spooled, 40);
    let replayed = eventually(Duration::from_secs(20), || async {
        ledger.status().spooled == 0 && count(&pool).await == 40
    })
    .await;
    assert!(replayed, "{:?}", ledger.status());
    assert!(!dir.path().join("ledger-spool.replay.jsonl").exists());
    pool.close().await;
}

/// The served requests' ids, collected by the load below.
type Served = Arc<Mutex<Vec<String>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_leaves_a_row_for_every_served_request() {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    // Streams take a while, so some are in flight when the signal comes.
    mock.set_default(
        Reply::text_chunks(["one ", "two ", "three ", "four"]).event_gap(Duration::from_millis(40)),
    );
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.yaml");
    std::fs::write(&config, yaml(&mock)).unwrap();
    let state = tmp.path().join("state");
    let gw = support::serve(&config, &state, tmp.path()).await;
    let base = gw.url.clone();

    let served: Served = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..24 {
        let (base, served, stop) = (base.clone(), served.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let id = format!("w{w:02}-{i:04}");
                let (path, body) = match i % 3 {
                    0 => ("/v1/chat/completions", chat("good", false)),
                    1 => ("/v1/chat/completions", chat("good", true)),
                    _ => ("/v1/messages", messages("good", true)),
                };
                let sent = client
                    .post(format!("{base}{path}"))
                    .bearer_auth(MASTER)
                    .header("x-request-id", &id)
                    .json(&body)
                    .send()
                    .await;
                let Ok(resp) = sent else { return };
                if resp.status() != 200 {
                    return;
                }
                // Served: the whole answer reached the client.
                match resp.text().await {
                    Ok(text) if !text.is_empty() => served.lock().unwrap().push(id),
                    _ => return,
                }
            }
        }));
    }
    let busy =
        eventually(Duration::from_secs(30), || async { served.lock().unwrap().len() >= 150 }).await;
    assert!(busy);
    let status = gw.stop().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    assert!(status.success(), "{status:?}");

    let served = served.lock().unwrap().clone();
    let pool = sqlite_pool(&state).await;
    let ids: Vec<String> = sqlx::query_scalar(r#"SELECT request_id FROM "LiteLLM_SpendLogs""#)
        .fetch_all(&pool)
        .await
        .unwrap();
    let recorded: BTreeSet<&String> = ids.iter().collect();
    let missing: Vec<&String> = served.iter().filter(|id| !recorded.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} served have no row: {missing:?}",
        missing.len(),
        served.len()
    );
    assert!(!state.join("ledger-spool.jsonl").exists(), "everything reached the database");
}

/// LiteLLM's `disable_spend_logs: true`: the gateway serves and records nothing, and says
/// so; no ledger file or spool is created in the state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_spend_logs_serves_and_writes_no_ledger() {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.yaml");
    std::fs::write(&config, yaml(&mock) + "  disable_spend_logs: true\n").unwrap();
    let state = tmp.path().join("state");
    let gw = support::serve(&config, &state, tmp.path()).await;
    let base = gw.url.clone();
    load(&base, "off", 5).await;
    let ready = health(&base, "/health/readiness").await;
    assert_eq!(ready["db"], "Not connected", "{ready}");
    assert!(ready["ledger"].is_null(), "{ready}");
    let status = gw.stop().await;
    assert!(status.success(), "{status}");
    for file in ["ledger.sqlite3", "ledger-spool.jsonl"] {
        assert!(!state.join(file).exists(), "{file} was created");
    }
}

/// How a client's stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Its last event was `message_stop`.
    Complete,
    /// Its last event was an `error` event: ended cleanly, not cut.
    ErrorEvent,
    /// Anything else: a cut mid-event, a stream without an end, a broken connection.
    Broken(String),
}

fn stream_end(text: &str) -> End {
    let Some(body) = text.strip_suffix("\n\n") else {
        return End::Broken(format!("does not end with a whole event: {text:?}"));
    };
    match body.rsplit("\n\n").next().and_then(|e| e.lines().next()) {
        Some("event: message_stop") => End::Complete,
        Some("event: error") => End::ErrorEvent,
        _ => End::Broken(format!("ends without message_stop or error: {text:?}")),
    }
}

/// SIGTERM while same-dialect relayed streams (`/v1/messages` to an Anthropic deployment,
/// the upstream's bytes passed on) are in flight: each of them finishes, or ends with an
/// error event, never cut mid-event; every request whose client got a head has exactly one
/// ledger row, and no request has two; the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_relayed_streams_in_flight_finishes_them_and_records_each_once() {
    let mock = MockUpstream::builder().api_key(ANT_KEY).record(false).start().await;
    // About half a second a stream: at any moment most of the workers' streams are open.
    mock.set_default(
        Reply::text_chunks(["a ", "b ", "c ", "d ", "e ", "f ", "g ", "h"])
            .event_gap(Duration::from_millis(50)),
    );
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.yaml");
    std::fs::write(&config, yaml(&mock)).unwrap();
    let state = tmp.path().join("state");
    let gw = support::serve(&config, &state, tmp.path()).await;
    let base = gw.url.clone();

    // Ids whose client got a 200 head, the ones open now, and how each one ended.
    let heads: Served = Arc::default();
    let open: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let ends: Arc<Mutex<Vec<(String, End)>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..16 {
        let (base, heads, open, ends) = (base.clone(), heads.clone(), open.clone(), ends.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let id = format!("relay-w{w:02}-{i:04}");
                let sent = client
                    .post(format!("{base}/v1/messages"))
                    .header("x-api-key", MASTER)
                    .header("anthropic-version", "2023-06-01")
                    .header("x-request-id", &id)
                    .json(&messages("good", true))
                    .send()
                    .await;
                // The listener has closed: this worker is done.
                let Ok(resp) = sent else { return };
                if resp.status() != 200 {
                    return;
                }
                heads.lock().unwrap().push(id.clone());
                open.lock().unwrap().insert(id.clone());
                let mut body = resp.bytes_stream();
                let mut text = Vec::new();
                let mut broke = None;
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(c) => text.extend_from_slice(&c),
                        Err(e) => {
                            broke = Some(format!("the connection broke: {e}"));
                            break;
                        }
                    }
                }
                let text = String::from_utf8(text).unwrap();
                let end = broke.map_or_else(|| stream_end(&text), End::Broken);
                // The relay passes the upstream's bytes: the mock's sorted keys, where the
                // translation would write `type` first.
                if end == End::Complete {
                    assert!(text.contains("data: {\"message\":"), "not relayed: {text}");
                }
                open.lock().unwrap().remove(&id);
                ends.lock().unwrap().push((id, end));
            }
        }));
    }
    let busy =
        eventually(Duration::from_secs(30), || async { ends.lock().unwrap().len() >= 48 }).await;
    assert!(busy, "the load never got going");
    let in_flight = open.lock().unwrap().clone();
    let status = gw.stop().await;
    for w in workers {
        w.await.unwrap();
    }
    assert!(status.success(), "{status:?}");
    assert!(!in_flight.is_empty(), "no stream was open when the signal came");

    let ends: std::collections::BTreeMap<String, End> =
        ends.lock().unwrap().iter().cloned().collect();
    let heads = heads.lock().unwrap().clone();
    assert_eq!(ends.len(), heads.len(), "every stream with a head ended");
    let broken: Vec<_> = ends.iter().filter(|(_, e)| matches!(e, End::Broken(_))).collect();
    assert!(broken.is_empty(), "{} streams cut: {broken:#?}", broken.len());
    let finished = in_flight.iter().filter(|id| ends[*id] == End::Complete).count();
    eprintln!(
        "{} streams, {} open at SIGTERM, {finished} of those finished, the rest ended with an error event",
        heads.len(),
        in_flight.len()
    );

    let pool = sqlite_pool(&state).await;
    let ids: Vec<String> = sqlx::query_scalar(r#"SELECT request_id FROM "LiteLLM_SpendLogs""#)
        .fetch_all(&pool)
        .await
        .unwrap();
    let recorded: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(recorded.len(), ids.len(), "a request recorded twice");
    let missing: Vec<&String> = heads.iter().filter(|id| !recorded.contains(id)).collect();
    assert!(missing.is_empty(), "{} of {} have no row: {missing:?}", missing.len(), heads.len());
    assert_eq!(ids.len(), heads.len(), "a row for a request no client saw a head of");
    // A stream that finished is a success, charged once: its tokens, not twice them.
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as(r#"SELECT request_id, status, completion_tokens FROM "LiteLLM_SpendLogs""#)
            .fetch_all(&pool)
            .await
            .unwrap();
    let tokens: BTreeSet<i64> = rows
        .iter()
        .filter(|(id, _, _)| ends[id] == End::Complete)
        .map(|(_, status, t)| {
            assert_eq!(status, "success");
            *t
        })
        .collect();
    assert_eq!(tokens.len(), 1, "every finished stream charged the same: {tokens:?}");
    pool.close().await;
}
