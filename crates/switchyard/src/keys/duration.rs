//! LiteLLM's durations (`duration`, `budget_duration`): a number and a unit, `30s`, `30m`,
//! `30h`, `30d`, `1w`, `1mo`.

use chrono::TimeDelta;

/// The span of `text`, or why it is not one.
pub fn parse(text: &str) -> Result<TimeDelta, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration: write a number and a unit, e.g. 30s, 30m, 30h, 30d")
    })?;
    let span = match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        "w" => TimeDelta::try_weeks(n),
        "mo" => TimeDelta::try_days(n.saturating_mul(30)),
        _ => None,
    };
    span.ok_or_else(|| {
        format!("`{text}` is not a duration: the unit must be s, m, h, d, w or mo (e.g. 30d)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litellm_units_parse_and_nonsense_does_not() {
        assert_eq!(parse("30s").unwrap(), TimeDelta::seconds(30));
        assert_eq!(parse("2h").unwrap(), TimeDelta::hours(2));
        assert_eq!(parse("7d").unwrap(), TimeDelta::days(7));
        assert!(parse("7x").unwrap_err().contains("unit"));
        assert!(parse("soon").is_err());
    }
}
