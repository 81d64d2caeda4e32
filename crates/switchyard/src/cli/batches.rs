//! `switchyard batches list|show|cancel`: the batches the gateway runs or forwarded to
//! Anthropic, from the command line. Works on the batch store directly (the config's
//! `database_url`, else `batches.sqlite3` in the state directory), like `keys`, so it needs no
//! running gateway and no key: a cancel stops the batch's queued requests at once, and the
//! gateway running it finishes the ones in flight and ends it; a forwarded batch is cancelled
//! at Anthropic through the deployment it went to (the config's key).

use chrono::DateTime;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output;
use super::store_args::StoreArgs;
use crate::batches::{BatchRow, Batches, Page, Settings};
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct BatchesArgs {
    #[command(subcommand)]
    pub command: BatchesCommand,

    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BatchesCommand {
    /// Batches, newest first: status, owner, request counts and cost.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One batch in full.
    Show { id: String },
    /// Cancel a batch: queued requests are canceled, those running finish.
    Cancel { id: String },
}

pub fn run(args: &BatchesArgs) -> u8 {
    let opened = match args.store.open("batch store") {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let (config, runtime) = (&opened.config, &opened.runtime);
    // The store's pool is built lazily inside the runtime.
    let _entered = runtime.enter();
    let batches = match Batches::open(&Settings {
        database_url: opened.database_url.clone(),
        state_dir: opened.state_dir.clone(),
    }) {
        Ok(batches) => batches,
        Err(message) => {
            output::stderr(&format!("switchyard: cannot open the batch store: {message}"));
            return exit::FAILED;
        }
    };
    runtime.block_on(async {
        match command(&batches, &args.command, config).await {
            Ok(answer) => {
                output::stdout(&if args.store.json {
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                } else {
                    render(&args.command, &answer)
                });
                exit::OK
            }
            Err(message) => {
                output::stderr(&format!("switchyard: {message}"));
                exit::FAILED
            }
        }
    })
}

async fn command(
    batches: &Batches,
    command: &BatchesCommand,
    config: &crate::config::Config,
) -> Result<Value, String> {
    let store = &batches.store;
    let failed = |e: crate::ledger::StoreError| {
        format!(
            "the batch store ({}) cannot be read: {e} [BAT-06]\n  fix: check that the database in \
             `database_url` is reachable, or that the state directory is the gateway's (--state-dir).",
            store.location()
        )
    };
    let missing = |id: &str| {
        format!(
            "no batch `{id}` in {} [BAT-03]\n  fix: `switchyard batches list` shows the ids; pass \
             the gateway's --config or --state-dir if it keeps batches elsewhere.",
            store.location()
        )
    };
    match command {
        BatchesCommand::List { limit } => {
            let page = Page { after: None, before: None, limit: (*limit).clamp(1, 10_000) };
            let (rows, more) = store.list_batches(None, None, &page).await.map_err(failed)?;
            Ok(json!({"batches": rows.iter().map(to_json).collect::<Vec<_>>(), "has_more": more}))
        }
        BatchesCommand::Show { id } => {
            let b = store.batch(id).await.map_err(failed)?.ok_or_else(|| missing(id))?;
            Ok(to_json(&b))
        }
        BatchesCommand::Cancel { id } => {
            let b = store.batch(id).await.map_err(failed)?.ok_or_else(|| missing(id))?;
            if !b.status.is_open() {
                return Err(format!(
                    "batch `{id}` has already ended ({}) [BAT-04]\n  fix: nothing to cancel; \
                     `switchyard batches show {id}` shows its counts.",
                    b.status.as_str()
                ));
            }
            if b.is_forwarded() {
                let b = crate::server::cancel_forwarded(config.clone(), batches.clone(), b)
                    .await
                    .map_err(|e| {
                    let (id, remedy) =
                        e.diagnosis.as_ref().map_or(("BAT-09", ""), |d| (d.id, d.remedy.as_str()));
                    format!("{} [{id}]\n  fix: {remedy}", e.message)
                })?;
                return Ok(to_json(&b));
            }
            let b = batches.cancel(id).await.map_err(failed)?.ok_or_else(|| missing(id))?;
            Ok(to_json(&b))
        }
    }
}

/// A batch for people and scripts: both APIs' batches in one shape, with its cost.
fn to_json(b: &BatchRow) -> Value {
    let c = &b.counts;
    json!({
        "id": b.id,
        "api": b.surface.as_str(),
        "runs_at": b.runs_at(),
        "upstream_id": b.upstream_id,
        "status": b.status.as_str(),
        "endpoint": b.endpoint,
        "owner": if b.owner.is_empty() { Value::from("master key") } else { Value::from(b.owner.clone()) },
        "owner_alias": b.owner_alias,
        "created_at": b.created_at,
        "ended_at": b.completed_at.or(b.cancelled_at).or(b.expired_at).or(b.failed_at),
        "expires_at": b.expires_at,
        "request_counts": {
            "total": c.total(),
            "queued": c.queued,
            "running": c.running,
            "succeeded": c.succeeded,
            "errored": c.errored,
            "canceled": c.canceled,
            "expired": c.expired,
        },
        "cost_usd": c.cost.normalize().to_string(),
        "unpriced_requests": c.unpriced,
        "input_file_id": b.input_file_id,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "errors": b.errors,
    })
}

fn when(v: &Value) -> String {
    v.as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn owner(b: &Value) -> String {
    match (&b["owner_alias"], b["owner"].as_str()) {
        (Value::String(alias), _) => alias.clone(),
        (_, Some("master key")) => "master key".to_owned(),
        (_, Some(token)) => format!("{}…", token.get(..12).unwrap_or(token)),
        _ => "-".to_owned(),
    }
}

fn render(command: &BatchesCommand, answer: &Value) -> String {
    match command {
        BatchesCommand::List { .. } => {
            let mut out = format!(
                "{:<34}  {:<9}  {:<9}  {:<11}  {:<16}  {:>6}  {:>6}  {:>6}  {:>8}  {:>12}  created\n",
                "id",
                "api",
                "runs at",
                "status",
                "owner",
                "total",
                "done",
                "failed",
                "pending",
                "cost USD"
            );
            let rows = answer["batches"].as_array().cloned().unwrap_or_default();
            for b in &rows {
                let c = &b["request_counts"];
                let failed = c["errored"].as_i64().unwrap_or(0)
                    + c["canceled"].as_i64().unwrap_or(0)
                    + c["expired"].as_i64().unwrap_or(0);
                let pending =
                    c["queued"].as_i64().unwrap_or(0) + c["running"].as_i64().unwrap_or(0);
                out.push_str(&format!(
                    "{:<34}  {:<9}  {:<9}  {:<11}  {:<16}  {:>6}  {:>6}  {:>6}  {:>8}  {:>12}  {}\n",
                    text(&b["id"]),
                    text(&b["api"]),
                    text(&b["runs_at"]),
                    text(&b["status"]),
                    owner(b),
                    text(&c["total"]),
                    text(&c["succeeded"]),
                    failed,
                    pending,
                    text(&b["cost_usd"]),
                    when(&b["created_at"]),
                ));
            }
            let more =
                if answer["has_more"] == json!(true) { " (more: raise --limit)" } else { "" };
            out.push_str(&format!("{} batches{more}", rows.len()));
            out
        }
        BatchesCommand::Show { .. } | BatchesCommand::Cancel { .. } => {
            let c = &answer["request_counts"];
            let mut out = String::new();
            for (label, value) in [
                ("id", text(&answer["id"])),
                ("api", text(&answer["api"])),
                ("runs at", text(&answer["runs_at"])),
                ("upstream id", text(&answer["upstream_id"])),
                ("status", text(&answer["status"])),
                ("endpoint", text(&answer["endpoint"])),
                ("owner", owner(answer)),
                ("created", when(&answer["created_at"])),
                ("ended", when(&answer["ended_at"])),
                ("expires", when(&answer["expires_at"])),
                (
                    "requests",
                    format!(
                        "{} total: {} succeeded, {} errored, {} canceled, {} expired, {} queued, {} running",
                        c["total"],
                        c["succeeded"],
                        c["errored"],
                        c["canceled"],
                        c["expired"],
                        c["queued"],
                        c["running"]
                    ),
                ),
                ("cost USD", text(&answer["cost_usd"])),
                ("unpriced", text(&answer["unpriced_requests"])),
                ("input file", text(&answer["input_file_id"])),
                ("output file", text(&answer["output_file_id"])),
                ("error file", text(&answer["error_file_id"])),
            ] {
                out.push_str(&format!("{label:<12} {value}\n"));
            }
            if let Some(errors) = answer["errors"].as_array() {
                for e in errors {
                    out.push_str(&format!(
                        "error        line {}: {} ({})\n",
                        e["line"],
                        text(&e["message"]),
                        text(&e["code"])
                    ));
                }
            }
            out.trim_end().to_owned()
        }
    }
}
