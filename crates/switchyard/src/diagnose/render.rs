//! `doctor`'s human output: the config section, a table per alias (deployment, provider,
//! model, region, credentials, result) with the cause and fix of each failure below it,
//! "Current status" and "Next steps". JSON is the [`Report`] itself, serialized.
//!
//! Formatting only: every word of cause and remedy comes from the report.

use std::fmt::Write as _;

use super::doctor::{AliasReport, DeploymentReport, Outcome, Report};

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let c = &report.config;
    let _ = writeln!(out, "Config");
    let _ = writeln!(out, "  file:      {} ({})", c.path, c.found);
    let files = if c.env_files.is_empty() { "none".to_owned() } else { c.env_files.join(", ") };
    let _ = writeln!(out, "  env files: {files}");
    if !c.aws_environment.is_empty() {
        let vars: Vec<String> = c
            .aws_environment
            .iter()
            .map(|v| match &v.shown {
                Some(shown) => format!("{}={shown} ({})", v.name, v.origin),
                None => format!("{} ({})", v.name, v.origin),
            })
            .collect();
        let _ = writeln!(out, "  AWS environment: {}", vars.join(", "));
    }
    for w in &c.warnings {
        let at = w.at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default();
        let _ = writeln!(out, "  warning: {at}{} {}: {}", w.id, w.key, w.message);
    }
    if report.offline {
        let _ = writeln!(out, "  --offline: no STS call and no live probe.");
    }
    for alias in &report.aliases {
        let _ = writeln!(out);
        alias_section(&mut out, alias);
    }
    let _ = writeln!(out, "\nCurrent status");
    for alias in &report.aliases {
        let _ = writeln!(out, "  {}", status_line(alias));
    }
    let summary = match report.all_served {
        Some(true) => "Every alias has a working deployment.",
        Some(false) => "Some aliases have no working deployment: requests for them fail.",
        None => "Not probed (--offline): run without --offline to know which aliases work.",
    };
    let _ = writeln!(out, "  {summary}");
    if let Some(l) = &report.ledger {
        let _ = writeln!(out, "  {}", ledger_line(l));
    }
    if let Some(r) = &report.redis {
        let state = match r.state {
            "ok" => "ok".to_owned(),
            "not_checked" => "not checked (--offline)".to_owned(),
            _ => format!("DEGRADED, {}", r.error.as_deref().unwrap_or("no answer")),
        };
        let _ = writeln!(out, "  Budgets and rate limits: Redis {}: {state}.", r.place);
    }
    if !report.next_steps.is_empty() {
        let _ = writeln!(out, "\nNext steps");
        let mut previous: &[String] = &[];
        for (i, s) in report.next_steps.iter().enumerate() {
            let ids = if s.diagnoses.is_empty() {
                String::new()
            } else {
                format!(" [{}]", s.diagnoses.join(", "))
            };
            let _ = writeln!(out, "  {}. {}{ids}", i + 1, s.text);
            // The same deployments as the step before go without saying.
            if !s.deployments.is_empty() && s.deployments.as_slice() != previous {
                let _ = writeln!(out, "     for: {}", s.deployments.join(", "));
            }
            previous = &s.deployments;
            for line in &s.lines {
                let _ = writeln!(out, "       {line}");
            }
        }
    }
    out
}

fn alias_section(out: &mut String, alias: &AliasReport) {
    let _ = writeln!(out, "{}", alias.alias);
    let mut rows = vec![
        ["DEPLOYMENT", "PROVIDER", "MODEL", "REGION", "CREDENTIALS", "RESULT"]
            .map(String::from)
            .to_vec(),
    ];
    for d in &alias.deployments {
        rows.push(vec![
            d.id.clone(),
            d.provider.to_owned(),
            d.model.clone(),
            d.region.clone().unwrap_or_else(|| "-".to_owned()),
            d.credentials.source.clone(),
            result_cell(d),
        ]);
    }
    out.push_str(&table(&rows));
    for d in &alias.deployments {
        details(out, d);
    }
}

fn result_cell(d: &DeploymentReport) -> String {
    let one = |o: &Outcome| match o {
        Outcome::Ok(a) => format!(
            "OK \"{}\" ({} in / {} out tokens, {} ms)",
            shorten(&a.reply, 24),
            a.input_tokens,
            a.output_tokens,
            a.latency_ms
        ),
        Outcome::Failed(f) => match &f.diagnosis {
            Some(diag) => format!("FAILED {} ({})", f.class, diag.id),
            None => format!("FAILED {}", f.class),
        },
        Outcome::NotChecked { reason } => format!("not probed ({reason})"),
    };
    match &d.stream {
        None => one(&d.result),
        Some(s) => format!("send: {}; stream: {}", one(&d.result), one(s)),
    }
}

/// Below the table: identity, expiry, and the cause and fix of a failure.
fn details(out: &mut String, d: &DeploymentReport) {
    let mut lines = Vec::new();
    if let Some(identity) = &d.identity {
        let mut line = format!("identity: {}", identity.summary());
        if identity.unrecognised() && d.failure().is_some_and(|f| f.class == "credentials_invalid")
        {
            line.push_str(
                " — STS agrees with Bedrock: AWS does not recognise these credentials at all.",
            );
        }
        lines.push(line);
    }
    if let Some(at) = &d.credentials.expires {
        lines.push(format!("credentials expire: {at}"));
    }
    if let Some(at) = &d.credentials.sso_token_expires {
        lines.push(format!("SSO token expires: {at}"));
    }
    if let Some(region) = &d.region_source {
        lines.push(format!("region from: {region}"));
    }
    let failures = [("", Some(&d.result)), ("stream: ", d.stream.as_ref())];
    for (label, outcome) in failures {
        let Some(Outcome::Failed(f)) = outcome else { continue };
        match &f.diagnosis {
            Some(diag) => {
                lines.push(format!("{label}cause: {}", diag.cause));
                lines.push(format!("{label}fix:   {}", diag.remedy));
            }
            None => lines.push(format!("{label}error: {}", f.message)),
        }
    }
    if d.works() == Some(true) && d.identity.is_none() {
        lines.clear();
    }
    if let Some(u) = &d.price.unpriced {
        lines.push(format!("price: {} ({})", u.cause, u.id));
        lines.push(format!("fix:   {}", u.remedy));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {}:", d.id);
    for line in lines {
        let _ = writeln!(out, "    {line}");
    }
}

fn status_line(alias: &AliasReport) -> String {
    let total = alias.deployments.len();
    let failing: Vec<&DeploymentReport> =
        alias.deployments.iter().filter(|d| d.works() == Some(false)).collect();
    match (&alias.served, &alias.served_by) {
        (Some(true), Some(by)) => {
            let d = alias.deployments.iter().find(|d| &d.id == by);
            let what = d.map(|d| format!("{by} ({}/{})", d.provider, d.model)).unwrap_or_default();
            if failing.is_empty() {
                format!("{}: served by {what}", alias.alias)
            } else {
                let names: Vec<String> = failing
                    .iter()
                    .map(|d| format!("{} ({})", d.id, d.failure().map_or("failed", |f| f.class)))
                    .collect();
                format!(
                    "{}: served by {what}; {} of {total} deployments failing: {}",
                    alias.alias,
                    failing.len(),
                    names.join(", ")
                )
            }
        }
        (Some(false), _) => format!(
            "{}: NOT SERVED: none of its {total} deployments works; requests for it fail",
            alias.alias
        ),
        _ => format!("{}: not probed", alias.alias),
    }
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    format!("{cut}…")
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < cols {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn ledger_line(l: &super::ledger::LedgerReport) -> String {
    let spooled = if l.spooled > 0 {
        format!(", {} row(s) waiting in the spool", l.spooled)
    } else {
        String::new()
    };
    match l.state {
        "off" => format!("Spend ledger: off (disable_spend_logs){spooled}."),
        "ok" => format!("Spend ledger: {} {}: ok{spooled}.", l.backend, l.location),
        "not_created" => format!(
            "Spend ledger: {} {}: nothing recorded yet (created by the first request){spooled}.",
            l.backend, l.location
        ),
        "not_checked" => {
            format!("Spend ledger: {} {}: not checked (--offline){spooled}.", l.backend, l.location)
        }
        _ => format!(
            "Spend ledger: {} {}: DEGRADED, {}{spooled}.",
            l.backend,
            l.location,
            l.error.as_deref().unwrap_or("no answer")
        ),
    }
}
