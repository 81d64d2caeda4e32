//! Budget periods (`budget_duration`, `time_period`) and the fixed window a moment falls in.
//!
//! Every window is a pure function of the UTC time, never of when a budget was created or
//! first used: every replica, and a restarted gateway, computes the same window without
//! asking anyone, and the ledger can be summed from the window's start.
//!
//! - `daily`, `1d`, `24h`: from 00:00 UTC to the next 00:00 UTC.
//! - `weekly`, `7d`, `1w`: from Monday 00:00 UTC to the next Monday.
//! - `monthly`, `1mo`, `30d`: from the 1st of the month 00:00 UTC to the 1st of the next.
//! - `Nmo`: blocks of N calendar months counted from January 1970.
//! - any other `Ns`, `Nm`, `Nh`, `Nd`, `Nw`: windows of that length counted from
//!   1970-01-01 00:00 UTC (so `30m` resets at :00 and :30, `12h` at 00:00 and 12:00 UTC).
//! - none: the budget never resets.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// How often a budget's spend starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// No `budget_duration`: spend accumulates for ever.
    Forever,
    /// A fixed length in seconds, windows counted from the Unix epoch.
    Seconds(i64),
    /// Calendar days aligned to 00:00 UTC.
    Day,
    /// Calendar weeks starting Monday 00:00 UTC.
    Week,
    /// N calendar months, starting on the 1st at 00:00 UTC.
    Months(u32),
}

/// One window of a period: `[start, end)`, `end` `None` for `Forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

impl Period {
    /// LiteLLM's duration syntax (digits and `s`, `m`, `h`, `d`, `w`, `mo`) and the named
    /// periods `daily`, `weekly`, `monthly`. `None` when it is neither.
    pub fn parse(text: &str) -> Option<Period> {
        let t = text.trim();
        match t {
            "daily" => return Some(Period::Day),
            "weekly" => return Some(Period::Week),
            "monthly" => return Some(Period::Months(1)),
            _ => {}
        }
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = t[..digits].parse().ok()?;
        if n == 0 {
            return None;
        }
        let period = match &t[digits..] {
            "s" => Period::Seconds(n),
            "m" => Period::Seconds(n.checked_mul(60)?),
            "h" if n == 24 => Period::Day,
            "h" => Period::Seconds(n.checked_mul(3600)?),
            "d" if n == 1 => Period::Day,
            "d" if n == 7 => Period::Week,
            "d" if n == 30 => Period::Months(1),
            "d" => Period::Seconds(n.checked_mul(86_400)?),
            "w" if n == 1 => Period::Week,
            "w" => Period::Seconds(n.checked_mul(7 * 86_400)?),
            "mo" => Period::Months(u32::try_from(n).ok()?),
            _ => return None,
        };
        Some(period)
    }

    /// A short stable name, used in counter keys (so two periods never share a counter).
    pub fn tag(self) -> String {
        match self {
            Period::Forever => "all".to_owned(),
            Period::Seconds(s) => format!("{s}s"),
            Period::Day => "day".to_owned(),
            Period::Week => "week".to_owned(),
            Period::Months(n) => format!("{n}mo"),
        }
    }

    /// The window `now` falls in.
    pub fn window(self, now: DateTime<Utc>) -> Window {
        match self {
            Period::Forever => Window { start: DateTime::<Utc>::UNIX_EPOCH, end: None },
            Period::Seconds(len) => {
                let start = now.timestamp().div_euclid(len) * len;
                Window { start: at(start), end: Some(at(start + len)) }
            }
            Period::Day => {
                let start = now.timestamp().div_euclid(86_400) * 86_400;
                Window { start: at(start), end: Some(at(start + 86_400)) }
            }
            Period::Week => {
                let days_since_monday = i64::from(now.weekday().num_days_from_monday());
                let midnight = now.timestamp().div_euclid(86_400) * 86_400;
                let start = midnight - days_since_monday * 86_400;
                Window { start: at(start), end: Some(at(start + 7 * 86_400)) }
            }
            Period::Months(n) => {
                let n = i64::from(n.max(1));
                let index = i64::from(now.year() - 1970) * 12 + i64::from(now.month0());
                let first = index.div_euclid(n) * n;
                Window { start: month_start(first), end: Some(month_start(first + n)) }
            }
        }
    }
}

impl Window {
    /// Seconds from `now` until the window ends (at least 1); `None` for a window that never
    /// ends.
    pub fn seconds_left(&self, now: DateTime<Utc>) -> Option<i64> {
        self.end.map(|end| (end - now).num_seconds().max(1))
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// 00:00 UTC on the 1st of the month `index` months after January 1970.
fn month_start(index: i64) -> DateTime<Utc> {
    let year = i32::try_from(1970 + index.div_euclid(12)).unwrap_or(1970);
    let month = u32::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn litellm_durations_and_named_periods_parse() {
        assert_eq!(Period::parse("30s"), Some(Period::Seconds(30)));
        assert_eq!(Period::parse("30m"), Some(Period::Seconds(1800)));
        assert_eq!(Period::parse("12h"), Some(Period::Seconds(43_200)));
        assert_eq!(Period::parse("24h"), Some(Period::Day));
        assert_eq!(Period::parse("1d"), Some(Period::Day));
        assert_eq!(Period::parse("daily"), Some(Period::Day));
        assert_eq!(Period::parse("7d"), Some(Period::Week));
        assert_eq!(Period::parse("weekly"), Some(Period::Week));
        assert_eq!(Period::parse("30d"), Some(Period::Months(1)));
        assert_eq!(Period::parse("1mo"), Some(Period::Months(1)));
        assert_eq!(Period::parse("monthly"), Some(Period::Months(1)));
        assert_eq!(Period::parse("3mo"), Some(Period::Months(3)));
        assert_eq!(Period::parse("2d"), Some(Period::Seconds(172_800)));
        for bad in ["", "d", "0d", "1y", "1 day", "-1d", "yearly"] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn named_windows_align_to_utc_midnight_monday_and_the_first() {
        let now = t("2026-12-03T20:15:00Z"); // a Thursday
        let day = Period::Day.window(now);
        assert_eq!(day.start, t("2026-12-03T00:00:00Z"));
        assert_eq!(day.end, Some(t("2026-12-04T00:00:00Z")));
        let week = Period::Week.window(now);
        assert_eq!(week.start, t("2026-11-30T00:00:00Z"));
        assert_eq!(week.end, Some(t("2026-12-07T00:00:00Z")));
        let month = Period::Months(1).window(now);
        assert_eq!(month.start, t("2026-12-01T00:00:00Z"));
        assert_eq!(month.end, Some(t("2027-01-01T00:00:00Z")));
        let quarter = Period::Months(3).window(now);
        assert_eq!(quarter.start, t("2026-10-01T00:00:00Z"));
        assert_eq!(quarter.end, Some(t("2027-01-01T00:00:00Z")));
    }

    #[test]
    fn short_windows_count_from_the_epoch_and_the_boundary_belongs_to_the_next() {
        let p = Period::Seconds(1800);
        assert_eq!(p.window(t("2026-12-03T20:29:59Z")).start, t("2026-12-03T20:00:00Z"));
        assert_eq!(p.window(t("2026-12-03T20:30:00Z")).start, t("2026-12-03T20:30:00Z"));
        let s = Period::Seconds(30).window(t("2026-12-03T20:15:45Z"));
        assert_eq!((s.start, s.end), (t("2026-12-03T20:15:30Z"), Some(t("2026-12-03T20:16:00Z"))));
        assert_eq!(s.seconds_left(t("2026-12-03T20:15:45Z")), Some(15));
        let f = Period::Forever.window(t("2026-12-03T20:15:45Z"));
        assert_eq!(f.end, None);
        assert_eq!(
            Period::Day.window(t("2026-12-31T23:59:59Z")).end,
            Some(t("2027-01-01T00:00:00Z"))
        );
    }
}
