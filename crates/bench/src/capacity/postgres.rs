//! PostgreSQL: transactions and rows per request through the team gateway
//! (`pg_stat_database`), and the ledger writer driven directly through the library's
//! `Ledger`: rows a second, CPU, WAL and bytes per row.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use bench::load::{self, Target};
use bench::procs::{self, Proc};

use super::{Body, COUNTED, LEDGER_ROWS};
use crate::compare::{Database, Settings};

/// This database's counters in `pg_stat_database`, read from the admin database.
#[derive(Clone, Copy, Default)]
struct PgStat {
    commits: f64,
    inserted: f64,
    updated: f64,
}

impl PgStat {
    async fn read(db: &Database) -> Result<Self, String> {
        let mut conn = db.admin().await?;
        let (commits, inserted, updated): (i64, i64, i64) = sqlx::query_as(
            "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = $1",
        )
        .bind(&db.name)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| format!("pg_stat_database: {e}"))?;
        Ok(Self { commits: commits as f64, inserted: inserted as f64, updated: updated as f64 })
    }

    fn minus(self, o: Self) -> Self {
        Self {
            commits: self.commits - o.commits,
            inserted: self.inserted - o.inserted,
            updated: self.updated - o.updated,
        }
    }

    fn scaled(self, k: f64) -> Self {
        Self { commits: self.commits * k, inserted: self.inserted * k, updated: self.updated * k }
    }
}

pub(super) struct PgCounted {
    requests: u64,
    pub errors: u64,
    per_request: PgStat,
    /// With no traffic, per second (the key poller, chiefly).
    idle_per_second: PgStat,
}

/// Transactions and rows per request in the team gateway's database: the idle rate over five
/// seconds first, then `COUNTED` requests, then a graceful stop (its last ledger batch
/// written, its connections closed, so every backend has reported its statistics).
pub(super) async fn pg_per_request(
    db: &Database,
    gateway: Proc,
    target: Arc<Target>,
) -> Result<PgCounted, String> {
    let idle = Duration::from_secs(5);
    // A backend that goes idle reports its statistics up to 10 s later (PostgreSQL 15's
    // idle interval): let the previous runs' land before the idle window.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let a = PgStat::read(db).await?;
    tokio::time::sleep(idle).await;
    let b = PgStat::read(db).await?;
    let started = Instant::now();
    let same = Body::Same.maker(&target);
    let o = load::exactly(Arc::clone(&target), COUNTED, 16, same).await;
    drop(gateway);
    let busy = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = PgStat::read(db).await?;
    let idle_rate = b.minus(a).scaled(1.0 / idle.as_secs_f64());
    let run = c.minus(b).minus(idle_rate.scaled(busy.as_secs_f64()));
    Ok(PgCounted {
        requests: o.requests,
        errors: o.errors,
        per_request: run.scaled(1.0 / COUNTED as f64),
        idle_per_second: idle_rate,
    })
}

pub(super) fn pg_table(md: &mut String, json: &mut serde_json::Map<String, Value>, pg: &PgCounted) {
    let p = pg.per_request;
    let i = pg.idle_per_second;
    let _ = writeln!(
        md,
        "\n## PostgreSQL per request (team setup)\n\nMethod: `pg_stat_database` of the run's own \
         database (read from the admin database, so the reads are not counted), over five idle \
         seconds, then over exactly {COUNTED} requests with the virtual key (16 connections) and \
         the gateway's graceful stop (its last batch written); the idle rate times the run's \
         length is subtracted.\n\n\
         | per request | transactions | rows inserted | rows updated |\n|---|--:|--:|--:|\n\
         | {} requests | {:.4} | {:.3} | {:.3} |\n\
         | idle, per second | {:.1} | {:.1} | {:.1} |",
        pg.requests, p.commits, p.inserted, p.updated, i.commits, i.inserted, i.updated
    );
    json.insert(
        "postgres_per_request".into(),
        json!({
            "requests": pg.requests,
            "errors": pg.errors,
            "transactions": p.commits,
            "rows_inserted": p.inserted,
            "rows_updated": p.updated,
            "idle_transactions_per_second": i.commits,
        }),
    );
}

pub(super) struct LedgerRun {
    rows: u64,
    seconds: f64,
    pub spooled: u64,
    stat: PgStat,
    /// CPU seconds of the database backends serving the writer, and of this process.
    backend_cpu: f64,
    client_cpu: f64,
    wal_bytes: f64,
    avg_row: f64,
    heap_per_row: f64,
    total_per_row: f64,
}

/// One ledger row as the gateway writes it for a priced chat request with a virtual key.
fn ledger_row(i: u64, key_hash: &str) -> switchyard::ledger::Record {
    use switchyard::ledger::{CALL_CHAT, Record, Tokens};
    let now = chrono::Utc::now();
    Record {
        request_id: format!("chatcmpl-capacity-{}-{i:08}", std::process::id()),
        call_type: CALL_CHAT.into(),
        start_time: now - chrono::Duration::milliseconds(850),
        end_time: now,
        first_token_time: Some(now - chrono::Duration::milliseconds(600)),
        duration_ms: 850,
        model_group: "cheap".into(),
        model_id: Some("deployment-0".into()),
        provider: Some("anthropic".into()),
        model: crate::MODEL.into(),
        api_base: Some("https://api.anthropic.com/v1/messages".into()),
        api_key: key_hash.into(),
        key_alias: Some("bench".into()),
        end_user: Some(format!("customer-{}", i % 100)),
        tags: vec!["capacity".into()],
        session_id: Some(format!("session-{}", i / 20)),
        tokens: Tokens { prompt: 1_200, completion: 350, cache_read: 0, cache_write: 0 },
        spend: Some(rust_decimal::Decimal::new(2_950, 6)),
        usage: Some(switchyard::canonical::Usage {
            input_tokens: 1_200,
            output_tokens: 350,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Drives the library's `Ledger` (its queue, batching and PostgreSQL store) with
/// `LEDGER_ROWS` rows as fast as it takes them, against the team database (LiteLLM's key
/// tables there, so each batch also adds to the key's running `spend`, as in production).
/// The queue is kept under half full, so no row is spooled and only the writer is measured.
pub(super) async fn ledger_writer(
    s: &Settings<'_>,
    db: &Database,
    key: &str,
) -> Result<LedgerRun, String> {
    use switchyard::ledger::{Ledger, QUEUE, Settings as LedgerSettings};
    let state_dir = s.work.join("ledger-writer");
    let settings = LedgerSettings {
        database_url: Some(switchyard::secret::Secret::new(db.url())),
        state_dir,
        retention: None,
    };
    let ledger = Ledger::open(&settings)?;
    let key_hash = switchyard::attribution::hash_key(key);
    // The first batch learns the table's columns; not counted.
    ledger.record(ledger_row(u64::MAX, &key_hash));
    ledger.flush().await;
    let backends: Vec<u32> = {
        let mut conn = db.admin().await?;
        let pids: Vec<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind(&db.name)
                .fetch_all(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        pids.into_iter().filter_map(|p| u32::try_from(p).ok()).collect()
    };
    let cpu = |pids: &[u32]| pids.iter().filter_map(|&p| procs::cpu_seconds(p).ok()).sum::<f64>();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = PgStat::read(db).await?;
    let wal_before = wal_lsn(db).await?;
    let (backend_before, client_before) = (cpu(&backends), procs::cpu_seconds(std::process::id())?);
    let started = Instant::now();
    for i in 0..LEDGER_ROWS {
        if i % 256 == 0 {
            while ledger.status().queued > QUEUE / 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        ledger.record(ledger_row(i, &key_hash));
    }
    ledger.flush().await;
    let seconds = started.elapsed().as_secs_f64();
    let backend_cpu = cpu(&backends) - backend_before;
    let client_cpu = procs::cpu_seconds(std::process::id())? - client_before;
    let wal_bytes = wal_lsn(db).await? - wal_before;
    let spooled = ledger.status().spooled;
    ledger.close(Duration::from_secs(5)).await;
    drop(ledger);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stat = PgStat::read(db).await?.minus(before);
    let mut conn = db.connect().await?;
    let (avg_row, rows, heap, total): (f64, i64, i64, i64) = sqlx::query_as(
        "SELECT avg(pg_column_size(t.*))::float8, count(*), \
         pg_relation_size('\"LiteLLM_SpendLogs\"'), pg_total_relation_size('\"LiteLLM_SpendLogs\"') \
         FROM \"LiteLLM_SpendLogs\" t",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| format!("row size: {e}"))?;
    let per = |bytes: i64| if rows > 0 { bytes as f64 / rows as f64 } else { 0.0 };
    Ok(LedgerRun {
        rows: LEDGER_ROWS,
        seconds,
        spooled,
        stat,
        backend_cpu,
        client_cpu,
        wal_bytes,
        avg_row,
        heap_per_row: per(heap),
        total_per_row: per(total),
    })
}

/// The server's WAL position in bytes (the whole server's: other databases' writes count).
async fn wal_lsn(db: &Database) -> Result<f64, String> {
    let mut conn = db.admin().await?;
    let bytes: f64 =
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| format!("pg_current_wal_lsn: {e}"))?;
    Ok(bytes)
}

pub(super) fn ledger_table(
    md: &mut String,
    json: &mut serde_json::Map<String, Value>,
    l: &LedgerRun,
) {
    let rows = l.rows as f64;
    let rps = rows / l.seconds;
    let per_txn = if l.stat.commits > 0.0 { l.stat.inserted / l.stat.commits } else { 0.0 };
    let _ = writeln!(
        md,
        "\n## The ledger writer\n\nMethod: the switchyard library's `Ledger` (bounded queue, one \
         writer, batches of up to {} rows or every {} ms, one `INSERT … SELECT FROM UNNEST` per \
         batch plus the key's running spend in the same statement) opened in the benchmark's \
         process on the team database, given {} rows as fast as it takes them (the queue kept \
         under half full, so none is spooled), until `flush` returns. Transactions and rows from \
         `pg_stat_database`; the database's CPU from its backends' `/proc/PID/stat`; WAL from \
         `pg_current_wal_lsn()` (the whole server's: other databases' writes count too, so an \
         upper bound); row size `avg(pg_column_size(row))` and the table's size (with and \
         without its indexes) per row.\n\n\
         | figure | value |\n|---|--:|\n\
         | rows a second | {rps:.0} |\n\
         | transactions (batches) | {:.0} ({per_txn:.0} rows each) |\n\
         | rows updated (running totals) | {:.0} |\n\
         | PostgreSQL backend CPU per row | {:.1} µs |\n\
         | writer's process CPU per row (building rows included) | {:.1} µs |\n\
         | WAL per row | {:.0} bytes |\n\
         | row, `pg_column_size` | {:.0} bytes |\n\
         | table per row: heap / with indexes | {:.0} / {:.0} bytes |\n\
         | rows spooled | {} |",
        switchyard::ledger::BATCH,
        switchyard::ledger::TICK.as_millis(),
        l.rows,
        l.stat.commits,
        l.stat.updated,
        l.backend_cpu * 1e6 / rows,
        l.client_cpu * 1e6 / rows,
        l.wal_bytes / rows,
        l.avg_row,
        l.heap_per_row,
        l.total_per_row,
        l.spooled
    );
    json.insert(
        "ledger_writer".into(),
        json!({
            "rows": l.rows,
            "seconds": l.seconds,
            "rows_per_second": rps,
            "batch_rows": switchyard::ledger::BATCH,
            "batch_tick_ms": switchyard::ledger::TICK.as_millis() as u64,
            "transactions": l.stat.commits,
            "rows_updated": l.stat.updated,
            "backend_cpu_us_per_row": l.backend_cpu * 1e6 / rows,
            "client_cpu_us_per_row": l.client_cpu * 1e6 / rows,
            "wal_bytes_per_row": l.wal_bytes / rows,
            "avg_row_bytes": l.avg_row,
            "heap_bytes_per_row": l.heap_per_row,
            "total_bytes_per_row": l.total_per_row,
            "spooled": l.spooled,
        }),
    );
}
