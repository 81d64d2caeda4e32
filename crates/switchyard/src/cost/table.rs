//! The built-in price table: `prices.txt` (dated, sources in its header), embedded in the
//! binary and parsed once, at first use, into a map by provider and model id.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;

use rust_decimal::Decimal;

/// The date the table's prices were read from their sources.
pub const DATE: &str = "2026-12-03";

const TEXT: &str = include_str!("prices.txt");

/// The providers the table prices; a row's first column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Anthropic,
    Bedrock,
    OpenAi,
}

impl Family {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "anthropic" => Self::Anthropic,
            "bedrock" => Self::Bedrock,
            "openai" => Self::OpenAi,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Bedrock => "bedrock",
            Self::OpenAi => "openai",
        }
    }
}

/// Per-token prices of one tier, in the table's column order: input, output, cache read,
/// 5-minute cache write, 1-hour cache write. `None` where the table has `-`.
pub type Tier = [Option<Decimal>; 5];

/// One row of the table, prices per token.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub family: Family,
    pub model: &'static str,
    pub base: Tier,
    /// The long-context tier: above this many input tokens (input + cache read + cache
    /// write), every token of the request is priced at these rates.
    pub long_context: Option<(u64, Tier)>,
}

/// The rows by provider and model id, and the lines that could not be read (none: a test
/// checks).
struct Table {
    rows: HashMap<Family, HashMap<&'static str, Row>>,
    errors: Vec<String>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let table = parse(TEXT);
    for e in &table.errors {
        tracing::error!("built-in price table: {e}");
    }
    table
});

/// The row for `model` of `family`, exactly as written in the table.
pub fn row(family: Family, model: &str) -> Option<&'static Row> {
    TABLE.rows.get(&family)?.get(model)
}

/// Every row, in no particular order.
pub fn rows() -> impl Iterator<Item = &'static Row> {
    TABLE.rows.values().flat_map(HashMap::values)
}

fn parse(text: &'static str) -> Table {
    let mut rows = HashMap::new();
    let mut errors = Vec::new();
    let mut header_seen = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            header_seen = true;
            if line.starts_with("provider") {
                continue;
            }
        }
        match parse_row(line) {
            Ok(row) => {
                let by_model: &mut HashMap<_, _> = rows.entry(row.family).or_default();
                if by_model.insert(row.model, row).is_some() {
                    errors.push(format!("line {}: a second row for the same model", i + 1));
                }
            }
            Err(e) => errors.push(format!("line {}: {e}", i + 1)),
        }
    }
    Table { rows, errors }
}

fn parse_row(line: &'static str) -> Result<Row, String> {
    let cells: Vec<&'static str> = line.split_whitespace().collect();
    let [provider, model, rest @ ..] = cells.as_slice() else {
        return Err("no model".to_owned());
    };
    if rest.len() != 11 {
        return Err(format!("{} price columns, not 11", rest.len()));
    }
    let family = Family::parse(provider).ok_or_else(|| format!("unknown provider {provider}"))?;
    let tier = |cells: &[&str]| -> Result<Tier, String> {
        let mut out = [None; 5];
        for (slot, cell) in out.iter_mut().zip(cells) {
            *slot = per_million(cell)?;
        }
        Ok(out)
    };
    let base = tier(&rest[..5])?;
    let long_context = match rest[5] {
        "-" => None,
        above => {
            let above = above.parse::<u64>().map_err(|_| format!("threshold {above}"))?;
            Some((above, tier(&rest[6..])?))
        }
    };
    Ok(Row { family, model, base, long_context })
}

/// A price per million tokens as written (`3.75`, `-`) → per token, exactly.
fn per_million(cell: &str) -> Result<Option<Decimal>, String> {
    if cell == "-" {
        return Ok(None);
    }
    let mut d = Decimal::from_str(cell).map_err(|_| format!("price {cell}"))?;
    if d.is_sign_negative() {
        return Err(format!("negative price {cell}"));
    }
    d.set_scale(d.scale() + 6).map_err(|_| format!("price {cell} too precise"))?;
    Ok(Some(d.normalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    #[test]
    fn the_embedded_table_parses_and_every_row_is_sane() {
        assert!(TABLE.errors.is_empty(), "{:?}", TABLE.errors);
        assert!(rows().count() > 250, "{} rows", rows().count());
        assert!(TEXT.contains(DATE), "the table's header names its date");
        for row in rows() {
            let name = format!("{} {}", row.family.as_str(), row.model);
            let [input, output, read, write, write_1h] = row.base;
            let (Some(input), Some(output)) = (input, output) else {
                panic!("{name}: no input or output price");
            };
            // An embedding model bills input only: its output price is 0.
            let embeds = row.model.contains("embed") && output.is_zero();
            assert!(
                input > Decimal::ZERO && (output >= input || embeds),
                "{name}: input {input} output {output}"
            );
            // Prices per token are small: a typo of a per-MTok price would show here.
            assert!(output < d("0.001"), "{name}: output {output} per token");
            if let Some(read) = read {
                assert!(read < input, "{name}: a cache read costs less than input");
            }
            if let Some(write) = write {
                assert!(write >= input, "{name}: a cache write costs at least input");
            }
            if let (Some(write), Some(write_1h)) = (write, write_1h) {
                assert!(write_1h > write, "{name}: a 1-hour write costs more than a 5-minute one");
            }
            if let Some((above, long)) = row.long_context {
                assert!(above >= 100_000, "{name}: threshold {above}");
                for (long, base) in long.iter().zip(row.base) {
                    if let (Some(long), Some(base)) = (long, base) {
                        assert!(*long > base, "{name}: the long-context tier costs more");
                    }
                }
                assert!(long[0].is_some() && long[1].is_some(), "{name}: long tier input/output");
            }
        }
    }

    #[test]
    fn prices_are_per_token_and_exact() {
        let sonnet = row(Family::Anthropic, "claude-sonnet-4-6").unwrap();
        assert_eq!(
            sonnet.base,
            [
                Some(d("0.000003")),
                Some(d("0.000015")),
                Some(d("0.0000003")),
                Some(d("0.00000375")),
                Some(d("0.000006")),
            ]
        );
        let haiku = row(Family::Bedrock, "anthropic.claude-3-haiku-20240307-v1:0").unwrap();
        assert_eq!(haiku.base[2], None, "no cache price listed");
    }

    #[test]
    fn geo_profiles_of_the_newest_claude_models_cost_10_percent_more_than_global() {
        let model = "anthropic.claude-sonnet-4-5-20250929-v1:0";
        let price = |id: &str| row(Family::Bedrock, id).unwrap().base[0].unwrap();
        let global = price(&format!("global.{model}"));
        assert_eq!(global, d("0.000003"));
        for geo in ["us", "eu", "jp"] {
            assert_eq!(price(&format!("{geo}.{model}")), global * d("1.1"), "{geo}");
        }
        // In-region calls pay the regional price too.
        assert_eq!(price(model), global * d("1.1"));
        // Where AWS charges no premium, geo and global are alike.
        let sonnet4 = "anthropic.claude-sonnet-4-20250514-v1:0";
        assert_eq!(price(&format!("us.{sonnet4}")), price(&format!("global.{sonnet4}")));
    }

    #[test]
    fn a_global_profile_is_never_dearer_than_its_geo_profiles() {
        for row in rows().filter(|r| r.family == Family::Bedrock) {
            let Some(model) = row.model.strip_prefix("global.") else { continue };
            for geo in ["us", "eu", "apac", "jp", "au"] {
                if let Some(geo_row) = super::row(Family::Bedrock, &format!("{geo}.{model}")) {
                    assert!(geo_row.base[0] >= row.base[0], "{geo}.{model}");
                }
            }
        }
    }

    #[test]
    fn a_bad_line_is_reported_not_guessed() {
        let t = parse(
            "provider model\nanthropic x 1 2 - - - - - - - - -\nanthropic y 1\nnope z 1 2 - - - - - - - - -\nanthropic w -1 2 - - - - - - - - -\n",
        );
        assert_eq!(t.rows.values().map(HashMap::len).sum::<usize>(), 1);
        assert_eq!(t.errors.len(), 3, "{:?}", t.errors);
    }
}
