//! Spend summed by a dimension (alias, model, tag, day …), in exact decimals, from the rows
//! [`super::read::Reader::scan`] yields. Unknown spend is counted apart, never added as $0:
//! a group's spend is the sum of its priced requests plus how many were unpriced.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::read::Entry;

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    Alias,
    Model,
    Deployment,
    Provider,
    /// One request counts under each of its tags.
    Tag,
    /// The end user the request named.
    User,
    /// The key's hash (and alias when known).
    Key,
    Session,
    /// The key's team (`team_id`).
    Team,
    /// The UTC date the request started.
    Day,
}

impl By {
    pub fn name(self) -> &'static str {
        match self {
            Self::Alias => "alias",
            Self::Model => "model",
            Self::Deployment => "deployment",
            Self::Provider => "provider",
            Self::Tag => "tag",
            Self::User => "user",
            Self::Key => "key",
            Self::Session => "session",
            Self::Team => "team",
            Self::Day => "day",
        }
    }
}

/// Sums over a set of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub requests: u64,
    pub failed: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// The sum of the priced requests' spend.
    pub spend: Decimal,
    /// Requests whose spend is unknown (an unpriced model): not in `spend`.
    pub unpriced: u64,
}

impl Totals {
    pub fn add(&mut self, e: &Entry) {
        self.requests += 1;
        self.failed += u64::from(e.failed);
        self.input_tokens += e.prompt_tokens;
        self.output_tokens += e.completion_tokens;
        self.cache_read_tokens += e.cache_read_tokens;
        self.cache_write_tokens += e.cache_write_tokens;
        match e.spend {
            Some(spend) => self.spend += spend,
            None => self.unpriced += 1,
        }
    }
}

/// One group of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The value grouped on (a full key hash for [`By::Key`]); empty for requests that have
    /// none (no tag, no end user, no key …).
    pub key: String,
    /// The key alias, for [`By::Key`].
    pub key_alias: Option<String>,
    pub totals: Totals,
}

/// A finished report: groups in display order and the total over distinct requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub by: By,
    pub groups: Vec<Group>,
    /// Every request once, even when [`By::Tag`] counts it under several tags.
    pub total: Totals,
}

/// Builds a [`Report`] one row at a time; memory grows with the groups, not the rows.
pub struct Builder {
    by: By,
    groups: HashMap<String, Group>,
    total: Totals,
}

impl Builder {
    pub fn new(by: By) -> Self {
        Self { by, groups: HashMap::new(), total: Totals::default() }
    }

    pub fn add(&mut self, e: &Entry) {
        self.total.add(e);
        let keys: Vec<&str> = match self.by {
            By::Tag if !e.tags.is_empty() => e.tags.iter().map(String::as_str).collect(),
            By::Tag => vec![""],
            By::Alias => vec![e.alias.as_str()],
            By::Model => vec![e.model.as_str()],
            By::Deployment => vec![e.deployment.as_str()],
            By::Provider => vec![e.provider.as_str()],
            By::User => vec![e.end_user.as_str()],
            By::Key => vec![e.api_key.as_str()],
            By::Session => vec![e.session_id.as_str()],
            By::Team => vec![e.team_id.as_str()],
            By::Day => return self.add_to(e.start.date().format("%Y-%m-%d").to_string(), e),
        };
        let mut seen: Vec<&str> = Vec::with_capacity(keys.len());
        for key in keys {
            // A tag written twice on one request counts it once.
            if !seen.contains(&key) {
                seen.push(key);
                self.add_to(key.to_owned(), e);
            }
        }
    }

    fn add_to(&mut self, key: String, e: &Entry) {
        let by = self.by;
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            key,
            key_alias: None,
            totals: Totals::default(),
        });
        if by == By::Key && group.key_alias.is_none() {
            group.key_alias.clone_from(&e.key_alias);
        }
        group.totals.add(e);
    }

    pub fn finish(self) -> Report {
        Report::new(self.by, self.groups.into_values().collect(), self.total)
    }
}

impl Report {
    /// The report of `groups`, put in display order: days in order; anything else by spend
    /// (then requests), largest first.
    pub fn new(by: By, mut groups: Vec<Group>, total: Totals) -> Self {
        if by == By::Day {
            groups.sort_by(|a, b| a.key.cmp(&b.key));
        } else {
            groups.sort_by(|a, b| {
                b.totals
                    .spend
                    .cmp(&a.totals.spend)
                    .then(b.totals.requests.cmp(&a.totals.requests))
                    .then(a.key.cmp(&b.key))
            });
        }
        Report { by, groups, total }
    }
}

impl Report {
    /// What a group is called on screen and in CSV: `(no tag)` for requests without one, a
    /// key as its short hash and alias (never the key).
    pub fn label(&self, g: &Group) -> String {
        if g.key.is_empty() {
            return match self.by {
                By::Tag => "(no tag)",
                By::Key => "(no key)",
                By::Session => "(no session)",
                By::User => "(no user)",
                By::Team => "(no team)",
                _ => "(none)",
            }
            .to_owned();
        }
        match (self.by, &g.key_alias) {
            (By::Key, Some(alias)) => format!("{} ({alias})", short_hash(&g.key)),
            (By::Key, None) => short_hash(&g.key),
            _ => g.key.clone(),
        }
    }

    /// A header line, then one line per group; spend exact.
    pub fn to_csv(&self) -> String {
        let mut out = format!(
            "{},requests,failed,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,spend,unpriced_requests\n",
            self.by.name()
        );
        for g in &self.groups {
            let t = &g.totals;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                csv_field(&self.label(g)),
                t.requests,
                t.failed,
                t.input_tokens,
                t.output_tokens,
                t.cache_read_tokens,
                t.cache_write_tokens,
                t.spend.normalize(),
                t.unpriced
            ));
        }
        out
    }
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `$0.002055`, `$12.50`: the exact sum, at least cents.
pub fn dollars(d: Decimal) -> String {
    let d = d.normalize();
    let d = if d.scale() < 2 {
        let mut d = d;
        d.rescale(2);
        d
    } else {
        d
    };
    format!("${d}")
}

/// A key hash as shown to people: its first 12 hex digits.
pub fn short_hash(hash: &str) -> String {
    match hash.get(..12) {
        Some(head) if hash.len() > 12 => format!("{head}…"),
        _ => hash.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn entry(alias: &str, tags: &[&str], spend: Option<&str>) -> Entry {
        Entry {
            alias: alias.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            prompt_tokens: 10,
            completion_tokens: 2,
            spend: spend.map(|s| Decimal::from_str(s).unwrap()),
            ..Entry::default()
        }
    }

    #[test]
    fn unknown_spend_is_counted_apart_never_as_zero() {
        let mut b = Builder::new(By::Alias);
        b.add(&entry("a", &[], Some("0.1")));
        b.add(&entry("a", &[], None));
        b.add(&entry("b", &[], Some("0.2")));
        let r = b.finish();
        assert_eq!(r.groups[0].key, "b");
        let a = &r.groups[1].totals;
        assert_eq!((a.requests, a.spend, a.unpriced), (2, Decimal::from_str("0.1").unwrap(), 1));
        assert_eq!((r.total.requests, r.total.unpriced), (3, 1));
        assert_eq!(r.total.spend, Decimal::from_str("0.3").unwrap());
    }

    #[test]
    fn tags_explode_but_the_total_counts_each_request_once() {
        let mut b = Builder::new(By::Tag);
        b.add(&entry("a", &["x", "y", "x"], Some("1")));
        b.add(&entry("a", &["y"], Some("2")));
        b.add(&entry("a", &[], Some("4")));
        let r = b.finish();
        let get = |k: &str| r.groups.iter().find(|g| g.key == k).unwrap().totals;
        assert_eq!((get("x").requests, get("x").spend), (1, Decimal::ONE));
        assert_eq!((get("y").requests, get("y").spend), (2, Decimal::from(3)));
        assert_eq!(get("").spend, Decimal::from(4));
        assert_eq!((r.total.requests, r.total.spend), (3, Decimal::from(7)));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn dollars_keep_every_digit_and_at_least_cents() {
        assert_eq!(dollars(Decimal::from_str("0.002055").unwrap()), "$0.002055");
        assert_eq!(dollars(Decimal::from_str("12.5000").unwrap()), "$12.50");
        assert_eq!(dollars(Decimal::ZERO), "$0.00");
    }
}
