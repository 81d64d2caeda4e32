//! Env files (`--env-file`, `SWITCHYARD_ENV_FILE`): read into memory, never exported into
//! the process, each variable remembering its file and line so a diagnosis can say
//! "ANTHROPIC_API_KEY from ~/.env:3".
//!
//! Parsing is dotenvy's (shell-style quotes, `export`, comments, `$VAR` expansion outside
//! single quotes); this file only adds line numbers and error messages that name the file.

use std::path::{Path, PathBuf};

use super::ConfigProblem;
use super::model::Location;

/// One assignment in an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileVar {
    pub key: String,
    pub value: String,
    /// 1-based line of the assignment.
    pub line: usize,
}

/// A parsed env file, assignments in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub vars: Vec<EnvFileVar>,
}

impl EnvFile {
    /// The value a shell would end up with after `source`-ing the file: the last assignment.
    pub fn get(&self, key: &str) -> Option<&EnvFileVar> {
        self.vars.iter().rev().find(|v| v.key == key)
    }
}

/// Reads and parses one env file. `how` says how it was named (`--env-file`,
/// `SWITCHYARD_ENV_FILE`) for the message when it cannot be read.
pub fn load(path: &Path, how: &str) -> Result<EnvFile, ConfigProblem> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigProblem {
        id: "CFG-08",
        location: None,
        key: how.to_owned(),
        message: format!("env file {} (from {how}) cannot be read: {e}", path.display()),
        remedy: format!(
            "check the path, or drop the {how} entry; relative paths are resolved from the \
             directory the gateway starts in"
        ),
    })?;
    parse(path, &text)
}

/// Parses env-file text. A line dotenvy cannot parse is a CFG-03 problem naming the file
/// and line.
pub fn parse(path: &Path, text: &str) -> Result<EnvFile, ConfigProblem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut vars = Vec::new();
    // Assignments come out of dotenvy in file order, so a forward-only cursor finds each
    // key's own line even when a key is assigned twice.
    let mut cursor = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                let found = (cursor..lines.len()).find(|&i| declares(lines[i], &key));
                let idx = found.unwrap_or(cursor);
                cursor = idx + 1;
                vars.push(EnvFileVar { key, value, line: idx + 1 });
            }
            Err(dotenvy::Error::LineParse(bad, index)) => {
                return Err(parse_problem(path, &lines, cursor, &bad, index));
            }
            Err(e) => {
                return Err(ConfigProblem {
                    id: "CFG-08",
                    location: None,
                    key: String::new(),
                    message: format!("env file {} cannot be read: {e}", path.display()),
                    remedy: "make sure the file is readable UTF-8 text".to_owned(),
                });
            }
        }
    }
    Ok(EnvFile { path: path.to_owned(), vars })
}

/// Whether a physical line assigns `key` (`KEY=`, `KEY =`, `export KEY=`).
fn declares(line: &str, key: &str) -> bool {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("export")
        && after.starts_with(char::is_whitespace)
    {
        rest = after.trim_start();
    }
    rest.strip_prefix(key).is_some_and(|after| after.trim_start().starts_with('='))
}

fn parse_problem(
    path: &Path,
    lines: &[&str],
    cursor: usize,
    bad: &str,
    index: usize,
) -> ConfigProblem {
    // dotenvy reports the logical line (quoted values may span several physical lines)
    // and an index into it; find where that logical line starts.
    let first = bad.lines().next().unwrap_or("").trim_end();
    let idx = (cursor..lines.len()).find(|&i| lines[i].trim_end() == first).unwrap_or(cursor);
    let column = if index <= first.len() { index + 1 } else { 1 };
    let unterminated = bad.matches('"').count() % 2 == 1 || bad.matches('\'').count() % 2 == 1;
    let message = if unterminated {
        format!("env file line cannot be parsed (a quote is never closed): {first}")
    } else {
        format!("env file line cannot be parsed: {first}")
    };
    ConfigProblem {
        id: "CFG-03",
        location: Some(Location { file: path.to_owned(), line: idx + 1, column }),
        key: String::new(),
        message,
        remedy: "write KEY=value or export KEY='value' (quote values containing spaces or #, \
                 close every quote; comments start a line with #)"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> EnvFile {
        parse(Path::new("t.env"), text).unwrap()
    }

    #[test]
    fn shell_style_lines_with_their_line_numbers() {
        let f = parsed(
            "# a comment\n\
             \n\
             PLAIN=abc\n\
             export SINGLE='it''s # not a comment'\n\
             DOUBLE=\"with space\" # trailing comment\n\
             export  SPACED = x\n",
        );
        let got: Vec<(&str, &str, usize)> =
            f.vars.iter().map(|v| (v.key.as_str(), v.value.as_str(), v.line)).collect();
        assert_eq!(
            got,
            vec![
                ("PLAIN", "abc", 3),
                ("SINGLE", "its # not a comment", 4),
                ("DOUBLE", "with space", 5),
                ("SPACED", "x", 6),
            ]
        );
    }

    #[test]
    fn empty_values_are_kept_as_empty() {
        let f = parsed("export EMPTY=''\nBARE=\n");
        assert_eq!(f.get("EMPTY").map(|v| (v.value.as_str(), v.line)), Some(("", 1)));
        assert_eq!(f.get("BARE").map(|v| (v.value.as_str(), v.line)), Some(("", 2)));
    }

    #[test]
    fn the_last_assignment_wins_and_keeps_its_own_line() {
        let f = parsed("K=first\nOTHER=1\nK=second\n");
        let k = f.get("K").unwrap();
        assert_eq!((k.value.as_str(), k.line), ("second", 3));
    }

    #[test]
    fn a_multi_line_quoted_value_does_not_shift_later_lines() {
        let f = parsed("CERT=\"line one\nline two\"\nAFTER=x\n");
        assert_eq!(f.get("CERT").unwrap().value, "line one\nline two");
        assert_eq!(f.get("AFTER").unwrap().line, 3);
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let err = parse(Path::new("dev.env"), "GOOD=1\n# ok\nnot a valid line\n").unwrap_err();
        assert_eq!(err.id, "CFG-03");
        let at = err.location.unwrap();
        assert_eq!((at.file.as_path(), at.line), (Path::new("dev.env"), 3));
        assert!(err.message.contains("not a valid line"), "{}", err.message);
    }

    #[test]
    fn an_unclosed_quote_is_reported_as_such() {
        let err = parse(Path::new("dev.env"), "A=1\nB='open\n").unwrap_err();
        assert_eq!(err.location.unwrap().line, 2);
        assert!(err.message.contains("never closed"), "{}", err.message);
    }

    #[test]
    fn a_missing_file_names_the_file_and_how_it_was_given() {
        let err = load(Path::new("/nonexistent/switchyard-test.env"), "--env-file").unwrap_err();
        assert_eq!(err.id, "CFG-08");
        assert!(err.message.contains("/nonexistent/switchyard-test.env"), "{}", err.message);
        assert!(err.message.contains("--env-file"), "{}", err.message);
    }
}
