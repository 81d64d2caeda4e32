//! `switchyard spend`: what the ledger says was spent, grouped by alias, model, deployment,
//! provider, tag, user, key, session or day — from the same store the gateway writes
//! (`database_url` / DATABASE_URL, else `<state dir>/ledger.sqlite3`), read-only, with or
//! without the gateway running. Exact decimals; unpriced requests are counted, never $0.
//! Exit 0 with a report (an empty one too), 1 when the ledger cannot be read (LED-01) or
//! does not exist yet (LED-02), 64 for a bad config.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{ConfigArgs, output};
use crate::config::{self, LoadOptions, ProcessEnv};
use crate::daemon::StateDir;
use crate::exit;
use crate::ledger::read::{Filter, ReadError, Reader};
use crate::ledger::report::{By, Report, Totals, dollars};
use crate::ledger::{Settings, parse_period};

#[derive(Debug, Clone, Args)]
pub struct SpendArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// State directory holding ledger.sqlite3 (default: $XDG_STATE_HOME/switchyard, else
    /// ~/.local/state/switchyard). Not used with a database_url.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// How far back from now: 30m, 12h, 7d, 2w, 1mo. The default is 7d.
    #[arg(long, value_name = "PERIOD", value_parser = since, conflicts_with_all = ["from", "to"])]
    pub since: Option<Duration>,

    /// From this UTC day or minute (YYYY-MM-DD or YYYY-MM-DDTHH:MM).
    #[arg(long, value_name = "WHEN", value_parser = when)]
    pub from: Option<When>,

    /// Up to this UTC day (included) or minute (excluded): YYYY-MM-DD or YYYY-MM-DDTHH:MM.
    #[arg(long, value_name = "WHEN", value_parser = when)]
    pub to: Option<When>,

    /// What to group by.
    #[arg(long, value_enum, default_value_t = ByArg::Alias)]
    pub by: ByArg,

    /// Print JSON (spend as exact decimal strings).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print CSV with a header line.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ByArg {
    Alias,
    Model,
    Deployment,
    Provider,
    Tag,
    User,
    Key,
    Session,
    Team,
    Day,
}

impl From<ByArg> for By {
    fn from(b: ByArg) -> Self {
        match b {
            ByArg::Alias => By::Alias,
            ByArg::Model => By::Model,
            ByArg::Deployment => By::Deployment,
            ByArg::Provider => By::Provider,
            ByArg::Tag => By::Tag,
            ByArg::User => By::User,
            ByArg::Key => By::Key,
            ByArg::Session => By::Session,
            ByArg::Team => By::Team,
            ByArg::Day => By::Day,
        }
    }
}

/// A point given on the command line: a whole day or a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    at: NaiveDateTime,
    day: bool,
}

fn when(text: &str) -> Result<When, String> {
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(When { at: d.and_time(chrono::NaiveTime::MIN), day: true });
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), format) {
            return Ok(When { at, day: false });
        }
    }
    Err(format!("`{text}` is not YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"))
}

fn since(text: &str) -> Result<Duration, String> {
    parse_period(text)
        .ok_or_else(|| format!("`{text}` is not a period such as 30m, 12h, 7d, 2w, 1mo"))
}

/// The window `[start, end)`: `--since` (7 days by default) back from now, or `--from`/`--to`.
fn window(args: &SpendArgs, now: NaiveDateTime) -> (Option<NaiveDateTime>, NaiveDateTime) {
    if args.from.is_none() && args.to.is_none() {
        let back = args.since.unwrap_or(Duration::from_secs(7 * 86_400));
        let back = chrono::Duration::from_std(back).unwrap_or(chrono::Duration::MAX);
        return (Some(now.checked_sub_signed(back).unwrap_or(NaiveDateTime::MIN)), now);
    }
    let end = match args.to {
        // A day given as the end is included whole.
        Some(When { at, day: true }) => at + chrono::Duration::days(1),
        Some(When { at, day: false }) => at,
        None => now,
    };
    (args.from.map(|w| w.at), end)
}

pub fn run(args: &SpendArgs) -> u8 {
    let opts = LoadOptions {
        config_path: args.config.config.clone(),
        env_files: args.config.env_files.clone(),
    };
    let config = match config::load(&opts, &ProcessEnv) {
        Ok(config) => config,
        Err(errors) => {
            output::stderr(&format!(
                "switchyard spend: the configuration is invalid, so which ledger it names is \
                 unknown\n\n{errors}"
            ));
            return exit::BAD_CONFIG;
        }
    };
    let dir = match StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv) {
        Ok(dir) => dir,
        Err(message) => {
            output::stderr(&format!("switchyard spend: {message}"));
            return exit::USAGE;
        }
    };
    let settings = Settings {
        database_url: config.general.database_url.as_ref().map(|u| u.value.clone()),
        state_dir: dir.root().to_owned(),
        retention: None,
    };
    let (start, end) = window(args, Utc::now().naive_utc());
    let filter = Filter { start, end: Some(end), ..Filter::default() };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            output::stderr(&format!("switchyard spend: cannot start the async runtime: {err}"));
            return exit::FAILED;
        }
    };
    let reader = Reader::new(&settings);
    let by = By::from(args.by);
    let result = runtime.block_on(async {
        let report = reader.report(&filter, by).await;
        reader.close().await;
        report
    });
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            output::stderr(&read_error(&e, &reader));
            return exit::FAILED;
        }
    };
    let ledger = format!("{} {}", reader.backend(), reader.location());
    let span = Span { start, end };
    if args.json {
        output::stdout(
            &serde_json::to_string_pretty(&to_json(&report, &span, &reader)).unwrap_or_default(),
        );
    } else if args.csv {
        output::stdout(report.to_csv().trim_end());
    } else {
        output::stdout(&to_text(&report, &span, &ledger));
    }
    exit::OK
}

fn read_error(e: &ReadError, reader: &Reader) -> String {
    match e {
        ReadError::Missing { location } => format!(
            "switchyard spend: no spend ledger at {location} yet (LED-02): the gateway creates \
             it with the first request it serves.\n  fix: if the gateway has served requests, \
             point at its ledger: the same --config (its database_url) or --state-dir it runs \
             with (`switchyard status` shows both); otherwise send a request first."
        ),
        ReadError::Unavailable { location, error } => format!(
            "switchyard spend: cannot read the spend ledger ({} {location}) (LED-01): {error}\n  \
             fix: {}",
            reader.backend(),
            if reader.backend() == "postgres" {
                "check that PostgreSQL is running and that database_url (or DATABASE_URL) names \
                 the right host, database and user"
            } else {
                "check the file's permissions; a damaged file can be moved aside (the gateway \
                 starts a new one)"
            }
        ),
    }
}

struct Span {
    start: Option<NaiveDateTime>,
    end: NaiveDateTime,
}

impl Span {
    fn text(&self) -> String {
        let t = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M").to_string();
        match &self.start {
            Some(start) => format!("{} → {} UTC", t(start), t(&self.end)),
            None => format!("until {} UTC", t(&self.end)),
        }
    }
}

fn rfc3339(t: &NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(*t, Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `$0.0123`, `$0.0123 + 3 unpriced`, or `3 unpriced` when nothing was priced.
fn spend_text(t: &Totals) -> String {
    match t.unpriced {
        0 => dollars(t.spend),
        n if n == t.requests => format!("{n} unpriced"),
        n => format!("{} + {n} unpriced", dollars(t.spend)),
    }
}

fn to_text(report: &Report, span: &Span, ledger: &str) -> String {
    let by = report.by;
    if report.groups.is_empty() {
        return format!("No requests recorded {} ({ledger}).", span_words(span));
    }
    let header = [
        by.name(),
        "requests",
        "failed",
        "input tokens",
        "output tokens",
        "cache read",
        "cache write",
        "spend",
    ];
    let cells = |name: String, t: &Totals| -> Vec<String> {
        vec![
            name,
            t.requests.to_string(),
            t.failed.to_string(),
            t.input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.cache_read_tokens.to_string(),
            t.cache_write_tokens.to_string(),
            spend_text(t),
        ]
    };
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    rows.extend(report.groups.iter().map(|g| cells(report.label(g), &g.totals)));
    let total = cells("total".to_owned(), &report.total);
    let mut widths = vec![0; header.len()];
    for row in rows.iter().chain(std::iter::once(&total)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String]| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 || i == row.len() - 1 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
            out.push_str("  ");
        }
        out.trim_end().to_owned()
    };
    let mut out = format!("Spend by {}, {} ({ledger})\n\n", by.name(), span.text());
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&"─".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    out.push('\n');
    out.push_str(&line(&total));
    if by == By::Tag {
        out.push_str(
            "\n\nA request with several tags counts under each; the total counts it once.",
        );
    }
    if report.total.unpriced > 0 {
        out.push_str(&format!(
            "\n\n{} request(s) ran on a deployment without a price: their cost is unknown, not $0 \
             (`switchyard config check` names them, CFG-10).",
            report.total.unpriced
        ));
    }
    out
}

fn span_words(span: &Span) -> String {
    let t = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    match &span.start {
        Some(start) => format!("between {} and {}", t(start), t(&span.end)),
        None => format!("before {}", t(&span.end)),
    }
}

fn totals_json(t: &Totals) -> Value {
    json!({
        "requests": t.requests,
        "failed": t.failed,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "cache_read_tokens": t.cache_read_tokens,
        "cache_write_tokens": t.cache_write_tokens,
        "spend": t.spend.normalize().to_string(),
        "unpriced_requests": t.unpriced,
    })
}

fn to_json(report: &Report, span: &Span, reader: &Reader) -> Value {
    let groups: Vec<Value> = report
        .groups
        .iter()
        .map(|g| {
            let mut v = totals_json(&g.totals);
            v["group"] = json!(report.label(g));
            if report.by == By::Key {
                v["key_hash"] = json!(g.key);
                v["key_alias"] = json!(g.key_alias);
            }
            v
        })
        .collect();
    json!({
        "by": report.by.name(),
        "from": span.start.as_ref().map(rfc3339),
        "to": rfc3339(&span.end),
        "ledger": {"backend": reader.backend(), "location": reader.location()},
        "groups": groups,
        "total": totals_json(&report.total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Decimal;

    #[test]
    fn a_day_as_the_end_is_included_whole() {
        let args = |from: Option<&str>, to: Option<&str>| SpendArgs {
            config: ConfigArgs::default(),
            state_dir: None,
            since: None,
            from: from.map(|f| when(f).unwrap()),
            to: to.map(|t| when(t).unwrap()),
            by: ByArg::Alias,
            json: false,
            csv: false,
        };
        let now = when("2026-12-03T12:00").unwrap().at;
        let (start, end) = window(&args(Some("2026-12-01"), Some("2026-12-02")), now);
        assert_eq!(start, Some(when("2026-12-01").unwrap().at));
        assert_eq!(end, when("2026-12-03").unwrap().at);
        let (_, end) = window(&args(None, Some("2026-12-02T10:30")), now);
        assert_eq!(end, when("2026-12-02T10:30").unwrap().at);
        let (start, end) = window(&args(None, None), now);
        assert_eq!((start, end), (Some(when("2026-11-26T12:00").unwrap().at), now));
        assert!(when("yesterday").is_err());
    }

    #[test]
    fn unpriced_requests_are_said_never_zero() {
        let t =
            Totals { requests: 5, unpriced: 3, spend: Decimal::new(1234, 2), ..Totals::default() };
        assert_eq!(spend_text(&t), "$12.34 + 3 unpriced");
        let all = Totals { requests: 3, unpriced: 3, ..Totals::default() };
        assert_eq!(spend_text(&all), "3 unpriced");
    }
}
