//! `GET /ui/api/spend?group_by=…&from=&to=[&format=csv]`: the report `switchyard spend`
//! prints, summed by the same code ([`crate::ledger::read::Reader::report`]) over the same
//! rows, as JSON for the charts and tables or as the same CSV.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Params, Scope, answer, bad_param, json, rfc3339, text, window};
use crate::classify::ApiError;
use crate::ledger::read::{Filter, ReadError, decimal_number};
use crate::ledger::report::{By, Report, Totals};
use crate::server::AppState;
use crate::server::spend::{reader, unavailable};

pub async fn spend(
    State(state): State<Arc<AppState>>,
    parts: Parts,
    Query(q): Query<Params>,
) -> Response {
    answer(inner(&state, &Scope::of(&parts), &q).await)
}

const GROUPS: &[(&str, By)] = &[
    ("alias", By::Alias),
    ("model", By::Model),
    ("deployment", By::Deployment),
    ("provider", By::Provider),
    ("tag", By::Tag),
    ("user", By::User),
    ("key", By::Key),
    ("team", By::Team),
    ("session", By::Session),
    ("day", By::Day),
];

async fn inner(state: &AppState, scope: &Scope, q: &Params) -> Result<Response, ApiError> {
    let name = text(q, "group_by").unwrap_or("alias");
    let Some(&(_, by)) = GROUPS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = GROUPS.iter().map(|(n, _)| *n).collect();
        return Err(bad_param(
            "group_by",
            format!("group_by must be one of {}, not `{name}`.", names.join(", ")),
        ));
    };
    let csv = match text(q, "format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(bad_param("format", format!("format must be json or csv, not `{other}`.")));
        }
    };
    // `switchyard spend`'s default: the last 7 days.
    let (from, to) = window(q, chrono::Duration::days(7))?;
    let filter = Filter {
        start: Some(from),
        end: Some(to),
        api_key: scope.key_filter(state, text(q, "key"))?,
        ..Filter::default()
    };
    let report = match reader(state)?.report(&filter, by).await {
        Ok(report) => report,
        Err(ReadError::Missing { .. }) => Report::new(by, Vec::new(), Totals::default()),
        Err(e) => return Err(unavailable(&e)),
    };
    if csv {
        let file = format!(
            "attachment; filename=\"spend-by-{}-{}.csv\"",
            by.name(),
            from.format("%Y%m%dT%H%M")
        );
        let mut response = (StatusCode::OK, report.to_csv()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
        if let Ok(value) = HeaderValue::from_str(&file) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    Ok(json(&body(&report, &rfc3339(&from), &rfc3339(&to))))
}

fn totals(t: &Totals) -> Value {
    json!({
        "spend": decimal_number(t.spend),
        "requests": t.requests,
        "failed": t.failed,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "cache_read_tokens": t.cache_read_tokens,
        "cache_write_tokens": t.cache_write_tokens,
        "unpriced_requests": t.unpriced,
    })
}

fn body(report: &Report, from: &str, to: &str) -> Value {
    let rows: Vec<Value> = report
        .groups
        .iter()
        .map(|g| {
            let mut row = totals(&g.totals);
            row["group"] = json!(report.label(g));
            if report.by == By::Key {
                row["key_alias"] = json!(g.key_alias);
            }
            row
        })
        .collect();
    json!({
        "group_by": report.by.name(),
        "from": from,
        "to": to,
        "total": totals(&report.total),
        "rows": rows,
    })
}
