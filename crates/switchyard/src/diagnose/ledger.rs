//! `doctor`'s view of the spend ledger: where rows go, whether that store answers, and how
//! many rows wait in the spool for it. Read-only: nothing is created.

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::ledger::read::{Filter, ReadError, Reader};
use crate::ledger::{Settings, spooled_rows};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerReport {
    /// `sqlite`, `postgres`, or `off` (`disable_spend_logs`).
    pub backend: &'static str,
    /// A path or `host:port/database`; never a password.
    pub location: String,
    /// `ok`, `not_created` (nothing recorded there yet), `unreachable`, `off`, or
    /// `not_checked` (`--offline` with PostgreSQL).
    pub state: &'static str,
    pub error: Option<String>,
    /// Rows in the spool of the state directory, waiting for the database.
    pub spooled: u64,
}

impl LedgerReport {
    pub fn degraded(&self) -> bool {
        self.state == "unreachable"
    }
}

pub async fn check(config: &Config, state_dir: &Path, offline: bool) -> LedgerReport {
    let spooled = spooled_rows(state_dir).unwrap_or(0);
    if config.general.disable_spend_logs {
        return LedgerReport {
            backend: "off",
            location: String::new(),
            state: "off",
            error: None,
            spooled,
        };
    }
    let settings = Settings {
        database_url: config.general.database_url.as_ref().map(|u| u.value.clone()),
        state_dir: state_dir.to_owned(),
        retention: None,
    };
    let reader = Reader::new(&settings);
    let (backend, location) = (reader.backend(), reader.location());
    if offline && backend == "postgres" {
        return LedgerReport { backend, location, state: "not_checked", error: None, spooled };
    }
    // An empty window: the cheapest query that proves the store and its table answer.
    let now = chrono::Utc::now().naive_utc();
    let probe = Filter { start: Some(now), end: Some(now), ..Filter::default() };
    let answer = reader.rows(&probe, 1).await;
    reader.close().await;
    let (state, error) = match answer {
        Ok(_) => ("ok", None),
        Err(ReadError::Missing { .. }) => ("not_created", None),
        Err(ReadError::Unavailable { error, .. }) => ("unreachable", Some(error)),
    };
    LedgerReport { backend, location, state, error, spooled }
}
