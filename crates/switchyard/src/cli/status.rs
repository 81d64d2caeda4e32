//! `switchyard status`: is the gateway of the state directory running, and how is it —
//! pid, uptime, URL, config, the last reload and its result (CFG-07 problems included),
//! health per alias (what traffic and the last probes showed; `--probe` probes live). Exit 0
//! running, 3 not running (GW-04), 1 running but not answering.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::output;
use crate::config::ProcessEnv;
use crate::daemon::client::{self, Client};
use crate::daemon::{GatewayInfo, Lookup, StateDir, clock, logfile};
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// State directory (default: $XDG_STATE_HOME/switchyard, else ~/.local/state/switchyard).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Probe every deployment live for the health summary (a few tokens each) instead of
    /// showing what traffic and the last probes showed.
    #[arg(long)]
    pub probe: bool,
}

pub fn run(args: &StatusArgs) -> u8 {
    let dir = match StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv) {
        Ok(dir) => dir,
        Err(message) => {
            output::stderr(&format!("switchyard: {message}"));
            return exit::USAGE;
        }
    };
    let report = match dir.lookup() {
        Lookup::Running(info) => running(&dir, &info, args.probe),
        Lookup::Stale { pid } => not_running(&dir, Some(pid), args.state_dir.is_some()),
        Lookup::NotRunning => not_running(&dir, None, args.state_dir.is_some()),
    };
    if args.json {
        output::stdout(&report.json.to_string());
    } else {
        output::stdout(&report.text);
    }
    report.code
}

struct Report {
    json: Value,
    text: String,
    code: u8,
}

fn not_running(dir: &StateDir, stale: Option<u32>, flag: bool) -> Report {
    let sd = if flag { format!(" --state-dir {}", dir.root().display()) } else { String::new() };
    let log = dir.log_file();
    let why = match stale {
        Some(pid) => format!("its last process (pid {pid}) is gone: it crashed or was killed"),
        None => format!("no gateway is recorded in {}", dir.root().display()),
    };
    let cause = format!("Switchyard is not running: {why}.");
    let remedy =
        format!("start it with `switchyard start{sd}` (or `switchyard serve` in the foreground)");
    let mut text = format!("{cause}  (GW-04)\n  fix: {remedy}");
    if log.exists() {
        text.push_str(&format!("\n  its log: {}", log.display()));
        if stale.is_some() {
            for line in logfile::tail(&log, 10).unwrap_or_default() {
                text.push_str(&format!("\n    {line}"));
            }
        }
    }
    let json = json!({
        "running": false,
        "state_dir": dir.root(),
        "stale_pid": stale,
        "log": log.exists().then_some(&log),
        "diagnosis": {"id": "GW-04", "cause": cause, "remedy": remedy},
    });
    Report { json, text, code: exit::NOT_RUNNING }
}

fn running(dir: &StateDir, info: &GatewayInfo, probe: bool) -> Report {
    let url = info.connect_url();
    let uptime = clock::unix_now().saturating_sub(info.started_at);
    let client = Client::new(&url, client::key_for(info));
    let answering = match &client {
        Ok(c) => c.readiness(Duration::from_secs(3)).map(|a| a.status == 200),
        Err(e) => Err(e.clone()),
    };
    let answering_error = match &answering {
        Ok(true) => None,
        Ok(false) => Some("readiness did not answer 200".to_owned()),
        Err(e) => Some(e.clone()),
    };
    // The live record when the gateway answers, else the one it wrote in the state dir.
    let live =
        client.as_ref().ok().and_then(|c| c.get("/config/status", Duration::from_secs(3)).ok());
    let last_reload = live
        .as_ref()
        .filter(|a| a.status == 200)
        .map(|a| a.body["last_reload"].clone())
        .or_else(|| info.last_reload.clone())
        .filter(|v| !v.is_null());
    let aliases: Vec<String> = live
        .as_ref()
        .filter(|a| a.status == 200)
        .and_then(|a| serde_json::from_value(a.body["aliases"].clone()).ok())
        .unwrap_or_default();
    let mut ledger: Option<Value> = None;
    let mut keys: Option<Value> = None;
    let mut limits: Option<Value> = None;
    let health = match &client {
        Ok(c) if answering_error.is_none() => match c.get(
            if probe { "/health" } else { "/health?cached=true" },
            Duration::from_secs(if probe { 60 } else { 5 }),
        ) {
            Ok(a) if a.status == 200 => {
                ledger = a.body.get("ledger").cloned().filter(|l| !l.is_null());
                keys = a.body.get("keys").cloned().filter(|k| !k.is_null());
                limits = a.body.get("limits").cloned().filter(|k| !k.is_null());
                Ok(per_alias(&a.body, &aliases))
            }
            Ok(a) => Err(format!(
                "/health answered {}: {} (status reads the master key from the config and \
                 env files, or SWITCHYARD_MASTER_KEY)",
                a.status,
                client::error_message(&a)
            )),
            Err(e) => Err(e),
        },
        _ => Err("the gateway is not answering".to_owned()),
    };
    let log = info.log.clone().or_else(|| dir.log_file().exists().then(|| dir.log_file()));

    let mut text = format!(
        "Switchyard is running (pid {}), up {}.\n  url:          {url}{}\n  config:       {}\n",
        info.pid,
        clock::duration(uptime),
        match &answering_error {
            None => "  (answering)".to_owned(),
            Some(e) => format!("  (NOT ANSWERING: {e})"),
        },
        info.config.display()
    );
    for file in &info.env_files {
        text.push_str(&format!("  env file:     {}\n", file.display()));
    }
    if let Some(log) = &log {
        text.push_str(&format!("  log:          {}\n", log.display()));
    }
    text.push_str(&format!("  last reload:  {}\n", describe_reload(last_reload.as_ref())));
    match &health {
        Ok(rows) => {
            text.push_str("  health:\n");
            for row in rows {
                text.push_str(&format!("    {}\n", health_line(row)));
            }
        }
        Err(e) => text.push_str(&format!("  health:       unavailable: {e}\n")),
    }
    if let Some(l) = &ledger {
        text.push_str(&format!("  ledger:       {}\n", ledger_line(l)));
    }
    if let Some(k) = &keys {
        text.push_str(&format!("  keys:         {}\n", keys_line(k)));
    }
    if let Some(l) = &limits {
        text.push_str(&format!("  limits:       {}\n", limits_line(l)));
    }
    let json = json!({
        "running": true,
        "answering": answering_error.is_none(),
        "answering_error": answering_error,
        "pid": info.pid,
        "url": url,
        "started_at": info.started_at,
        "uptime_seconds": uptime,
        "config": info.config,
        "env_files": info.env_files,
        "log": log,
        "state_dir": dir.root(),
        "version": info.version,
        "last_reload": last_reload,
        "health": health.as_ref().ok(),
        "health_error": health.as_ref().err(),
        "ledger": ledger,
        "keys": keys,
        "limits": limits,
    });
    let code = if answering_error.is_none() { exit::OK } else { exit::FAILED };
    Report { json, text: text.trim_end().to_owned(), code }
}

/// `12 s ago (SIGHUP): ok — aliases added: b (4 aliases)`, and a rejection's problems.
fn describe_reload(record: Option<&Value>) -> String {
    let Some(r) = record else { return "none since start".to_owned() };
    let at = r["at"].as_u64().map(clock::ago).unwrap_or_default();
    let trigger = r["trigger"].as_str().unwrap_or("?");
    let summary = r["summary"].as_str().unwrap_or("");
    if r["ok"].as_bool() == Some(true) {
        return format!("{at} ({trigger}): ok, {summary}");
    }
    let mut text = format!("{at} ({trigger}): REJECTED (CFG-07), {summary}");
    if let Some(problems) = r["error"]["text"].as_str() {
        for line in problems.lines().filter(|l| !l.trim().is_empty()) {
            text.push_str(&format!("\n      {line}"));
        }
    }
    text
}

/// `postgres 127.0.0.1:5432/spend: ok, 120 rows written` or `… DEGRADED since 3 min ago: the
/// database did not answer; 40 rows spooled`.
fn ledger_line(l: &Value) -> String {
    let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
    let n = |k: &str| l[k].as_u64().unwrap_or(0);
    let at = format!("{} {}", text("backend"), text("location"));
    if text("state") == "ok" {
        let mut line = format!("{at}: ok, {} rows written", n("written"));
        if n("spooled") > 0 {
            line.push_str(&format!(", {} rows spooled", n("spooled")));
        }
        return line;
    }
    let since = clock::unix_now().saturating_sub(n("since"));
    format!(
        "{at}: DEGRADED for {}: {}; {} rows spooled (replayed when the database answers)",
        clock::duration(since),
        text("error"),
        n("spooled")
    )
}

/// Where budgets and rate limits are counted: `in this process`, `redis 127.0.0.1:6379: ok`,
/// or `redis …: DEGRADED since …: <error>; counting in this process` (or refusing requests,
/// with `fail_closed`).
fn limits_line(l: &Value) -> String {
    let text = |f: &str| l[f].as_str().unwrap_or_default().to_owned();
    if text("backend") != "redis" {
        return "counted in this process".to_owned();
    }
    let at = format!("redis {}", text("redis"));
    if text("state") == "ok" {
        return format!("{at}: ok, shared by every replica");
    }
    let then = if l["fail_closed"].as_bool() == Some(true) {
        "refusing requests until it answers (fail_closed, LIM-03)"
    } else {
        "counting in this process meanwhile (LIM-03)"
    };
    format!("{at}: DEGRADED since {}: {}; {then}", text("since"), text("error"))
}

/// `sqlite /s/keys.sqlite3: ok, 3 keys, 1 team` or `… DEGRADED for 2 min: <error>; serving
/// the last 3 keys loaded`.
fn keys_line(k: &Value) -> String {
    let text = |f: &str| k[f].as_str().unwrap_or_default().to_owned();
    let n = |f: &str| k[f].as_u64().unwrap_or(0);
    let at = format!("{} {}", text("backend"), text("location"));
    let counts = format!(
        "{} keys, {} teams, {} users, {} end users",
        n("keys"),
        n("teams"),
        n("users"),
        n("end_users")
    );
    match text("state").as_str() {
        "ok" => format!("{at}: ok, {counts}"),
        state => {
            let since = clock::unix_now().saturating_sub(n("since"));
            format!(
                "{at}: {} for {}: {}; serving the last {counts} loaded",
                state.to_uppercase(),
                clock::duration(since),
                text("error")
            )
        }
    }
}

/// `/health` grouped per alias, in config order: counts and each unhealthy deployment.
fn per_alias(health: &Value, order: &[String]) -> Vec<Value> {
    let mut aliases: Vec<String> = order.to_vec();
    let empty = Vec::new();
    let healthy = health["healthy_endpoints"].as_array().unwrap_or(&empty);
    let unhealthy = health["unhealthy_endpoints"].as_array().unwrap_or(&empty);
    for e in healthy.iter().chain(unhealthy) {
        if let Some(a) = e["model_name"].as_str()
            && !aliases.iter().any(|x| x == a)
        {
            aliases.push(a.to_owned());
        }
    }
    let of = |list: &Vec<Value>, alias: &str| -> Vec<Value> {
        list.iter().filter(|e| e["model_name"] == alias).cloned().collect()
    };
    aliases
        .iter()
        .map(|alias| {
            let bad: Vec<Value> = of(unhealthy, alias)
                .iter()
                .map(|e| {
                    json!({
                        "model_id": e["model_id"],
                        "error_class": e["error_class"],
                        "diagnosis": e["diagnosis"]["id"],
                        "cooldown_remaining_seconds": e["cooldown_remaining_seconds"],
                    })
                })
                .collect();
            json!({
                "alias": alias,
                "healthy": of(healthy, alias).len(),
                "unhealthy": bad.len(),
                "unhealthy_endpoints": bad,
            })
        })
        .collect()
}

fn health_line(row: &Value) -> String {
    let healthy = row["healthy"].as_u64().unwrap_or(0);
    let unhealthy = row["unhealthy"].as_u64().unwrap_or(0);
    let mut line = format!(
        "{:<14} {healthy}/{} healthy",
        row["alias"].as_str().unwrap_or("?"),
        healthy + unhealthy
    );
    if let Some(bad) = row["unhealthy_endpoints"].as_array() {
        let parts: Vec<String> = bad
            .iter()
            .map(|e| {
                let mut p = format!(
                    "{}: {}",
                    e["model_id"].as_str().unwrap_or("?"),
                    e["error_class"].as_str().unwrap_or("cooling down")
                );
                if let Some(id) = e["diagnosis"].as_str() {
                    p.push_str(&format!(" ({id})"));
                }
                p
            })
            .collect();
        if !parts.is_empty() {
            line.push_str(&format!(" — {}", parts.join("; ")));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_line_says_where_counters_are_and_what_an_outage_does() {
        assert_eq!(
            limits_line(&json!({"backend": "memory", "state": "ok"})),
            "counted in this process"
        );
        let ok = json!({"backend": "redis", "state": "ok", "redis": "r:6379"});
        assert_eq!(limits_line(&ok), "redis r:6379: ok, shared by every replica");
        let down = json!({"backend": "redis", "state": "degraded", "redis": "r:6379",
            "since": "2026-12-03T20:00:00+00:00", "error": "refused", "fail_closed": true});
        let line = limits_line(&down);
        assert!(
            line.starts_with("redis r:6379: DEGRADED since 2026-12-03T20:00:00+00:00: refused")
        );
        assert!(line.contains("refusing requests"), "{line}");
    }

    #[test]
    fn the_keys_line_says_where_keys_live_and_when_they_went_stale() {
        let ok = json!({"backend": "sqlite", "location": "/s/keys.sqlite3", "state": "ok",
            "keys": 3, "teams": 1, "users": 0, "end_users": 2});
        assert_eq!(
            keys_line(&ok),
            "sqlite /s/keys.sqlite3: ok, 3 keys, 1 teams, 0 users, 2 end users"
        );
        let bad = json!({"backend": "postgres", "location": "h:5432/db", "state": "degraded",
            "since": 0, "error": "connection refused", "keys": 3});
        let line = keys_line(&bad);
        assert!(
            line.starts_with("postgres h:5432/db: DEGRADED for ")
                && line.contains("connection refused")
                && line.contains("serving the last 3 keys"),
            "{line}"
        );
    }

    #[test]
    fn the_ledger_line_says_where_rows_go_and_what_waits() {
        let ok = json!({"backend": "sqlite", "location": "/s/ledger.sqlite3", "state": "ok",
                        "since": 0, "written": 12, "spooled": 0, "queued": 0});
        assert_eq!(ledger_line(&ok), "sqlite /s/ledger.sqlite3: ok, 12 rows written");
        let bad = json!({"backend": "postgres", "location": "db:5432/spend", "state": "degraded",
                         "since": clock::unix_now(), "error": "refused", "spooled": 40});
        let line = ledger_line(&bad);
        assert!(line.starts_with("postgres db:5432/spend: DEGRADED for "), "{line}");
        assert!(line.ends_with("refused; 40 rows spooled (replayed when the database answers)"));
    }

    #[test]
    fn health_is_grouped_per_alias_in_config_order() {
        let health = json!({
            "healthy_endpoints": [{"model_name": "cheap", "model_id": "a"}],
            "unhealthy_endpoints": [{"model_name": "frontier", "model_id": "b",
                "error_class": "credentials_invalid", "diagnosis": {"id": "ANT-01"}}],
        });
        let rows = per_alias(&health, &["frontier".into(), "cheap".into()]);
        assert_eq!(rows[0]["alias"], "frontier");
        assert_eq!(
            health_line(&rows[0]),
            "frontier       0/1 healthy — b: credentials_invalid (ANT-01)"
        );
        assert_eq!(health_line(&rows[1]), "cheap          1/1 healthy");
    }

    #[test]
    fn a_rejected_reload_shows_its_problems() {
        let r = json!({"at": clock::unix_now(), "trigger": "SIGHUP", "ok": false,
            "summary": "rejected: 1 problem", "error": {"text": "c.yaml has 1 problem:\nc.yaml:2:3: CFG-03 x\n"}});
        let text = describe_reload(Some(&r));
        assert!(text.contains("REJECTED (CFG-07)"), "{text}");
        assert!(text.contains("\n      c.yaml:2:3: CFG-03 x"), "{text}");
        assert_eq!(describe_reload(None), "none since start");
    }
}
