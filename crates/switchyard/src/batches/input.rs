//! A batch's requests as the client wrote them, checked before anything runs: an OpenAI
//! input file (JSONL, one `{custom_id, method, url, body}` per line) or an Anthropic
//! `requests` list (`{custom_id, params}`). Every problem is reported at once, with its line.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::model::NewItem;
use crate::classify::{ApiError, Diagnosis};

/// Requests one batch may hold (OpenAI's limit per file; Anthropic allows 100,000).
pub const MAX_OPENAI_ITEMS: usize = 50_000;
pub const MAX_ANTHROPIC_ITEMS: usize = 100_000;

/// The endpoints an OpenAI batch may run.
pub const OPENAI_ENDPOINTS: [&str; 2] = ["/v1/chat/completions", "/v1/responses"];

/// One problem with an input line, in OpenAI's `errors.data` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub code: &'static str,
    pub line: usize,
    pub message: String,
    pub param: Option<&'static str>,
}

impl LineError {
    pub fn to_json(&self) -> Value {
        json!({"code": self.code, "line": self.line, "message": self.message, "param": self.param})
    }
}

/// Reads an OpenAI batch input file for `endpoint`: the items, or every line's problem.
pub fn openai_lines(content: &str, endpoint: &str) -> Result<Vec<NewItem>, Vec<LineError>> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, text) in content.lines().enumerate() {
        let line = i + 1;
        if text.trim().is_empty() {
            continue;
        }
        let mut fail = |code, message: String, param| {
            errors.push(LineError { code, line, message, param });
        };
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
            fail("invalid_json_line", format!("Line {line} is not a JSON object."), None);
            continue;
        };
        let Some(custom_id) = obj.get("custom_id").and_then(Value::as_str) else {
            fail(
                "missing_required_parameter",
                format!("Line {line} has no `custom_id` string."),
                Some("custom_id"),
            );
            continue;
        };
        if !seen.insert(custom_id.to_owned()) {
            fail(
                "duplicate_custom_id",
                format!(
                    "The custom_id `{custom_id}` of line {line} is used by an earlier line; each must be unique."
                ),
                Some("custom_id"),
            );
            continue;
        }
        match obj.get("method").and_then(Value::as_str) {
            Some("POST") => {}
            _ => {
                fail(
                    "invalid_method",
                    format!("Line {line}: `method` must be \"POST\"."),
                    Some("method"),
                );
                continue;
            }
        }
        if obj.get("url").and_then(Value::as_str) != Some(endpoint) {
            fail(
                "mismatched_url",
                format!("Line {line}: `url` must be the batch's endpoint `{endpoint}`."),
                Some("url"),
            );
            continue;
        }
        let Some(body @ Value::Object(_)) = obj.get("body") else {
            fail(
                "missing_required_parameter",
                format!("Line {line} has no `body` object."),
                Some("body"),
            );
            continue;
        };
        items.push(NewItem {
            line: i64::try_from(items.len()).unwrap_or(i64::MAX),
            custom_id: custom_id.to_owned(),
            body: body.to_string(),
        });
    }
    if items.is_empty() && errors.is_empty() {
        errors.push(LineError {
            code: "empty_file",
            line: 0,
            message: "The input file has no request lines.".to_owned(),
            param: None,
        });
    }
    if items.len() > MAX_OPENAI_ITEMS {
        errors.push(LineError {
            code: "too_many_requests",
            line: MAX_OPENAI_ITEMS + 1,
            message: format!(
                "A batch holds at most {MAX_OPENAI_ITEMS} requests; this file has {}.",
                items.len()
            ),
            param: None,
        });
    }
    if errors.is_empty() { Ok(items) } else { Err(errors) }
}

/// BAT-01: the batch's requests cannot be run as written.
pub fn invalid(problems: &[String]) -> ApiError {
    let first = problems.first().cloned().unwrap_or_default();
    let more = if problems.len() > 1 {
        format!(" (and {} more)", problems.len() - 1)
    } else {
        String::new()
    };
    ApiError::invalid_request(
        format!("The batch cannot be created: {first}{more}"),
        Some("requests"),
    )
    .with_diagnosis(Diagnosis::new(
        "BAT-01",
        "Some requests of the batch are malformed, so none of it was queued.",
        "Fix the requests named above (each needs a unique custom_id and its request \
             body) and create the batch again.",
    ))
}

/// Reads Anthropic's `requests`: the items, or the whole request refused (Anthropic checks
/// a batch when it is created).
pub fn anthropic_requests(body: &Value) -> Result<Vec<NewItem>, ApiError> {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return Err(invalid(&["`requests` must be a list of {custom_id, params}.".to_owned()]));
    };
    let mut problems = Vec::new();
    let mut items = Vec::with_capacity(requests.len());
    let mut seen = HashSet::new();
    for (i, r) in requests.iter().enumerate() {
        let custom_id = r.get("custom_id").and_then(Value::as_str).unwrap_or_default();
        let valid_id = !custom_id.is_empty()
            && custom_id.len() <= 64
            && custom_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_id {
            problems.push(format!(
                "requests.{i}.custom_id must be 1 to 64 letters, digits, `_` or `-`"
            ));
            continue;
        }
        if !seen.insert(custom_id) {
            problems.push(format!(
                "requests.{i}.custom_id `{custom_id}` is used by an earlier request"
            ));
            continue;
        }
        let Some(params @ Value::Object(p)) = r.get("params") else {
            problems.push(format!("requests.{i}.params must be a Messages request object"));
            continue;
        };
        if p.get("stream") == Some(&Value::Bool(true)) {
            problems.push(format!("requests.{i}.params.stream: a batch request cannot stream"));
            continue;
        }
        items.push(NewItem {
            line: i64::try_from(i).unwrap_or(i64::MAX),
            custom_id: custom_id.to_owned(),
            body: params.to_string(),
        });
    }
    if requests.is_empty() {
        problems.push("`requests` is empty".to_owned());
    }
    if requests.len() > MAX_ANTHROPIC_ITEMS {
        problems.push(format!("a batch holds at most {MAX_ANTHROPIC_ITEMS} requests"));
    }
    if problems.is_empty() { Ok(items) } else { Err(invalid(&problems)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let file = concat!(
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#,
            "\n",
            "not json\n",
            "\n",
            r#"{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}"#,
            "\n",
            r#"{"custom_id":"c","method":"POST","url":"/v1/responses","body":{}}"#,
            "\n",
        );
        let errors = openai_lines(file, "/v1/chat/completions").unwrap_err();
        let got: Vec<(&str, usize)> = errors.iter().map(|e| (e.code, e.line)).collect();
        assert_eq!(
            got,
            [("invalid_json_line", 2), ("duplicate_custom_id", 4), ("mismatched_url", 5)]
        );
    }

    #[test]
    fn good_lines_become_items_in_order() {
        let file = concat!(
            r#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#,
            "\n",
            r#"{"custom_id":"y","method":"POST","url":"/v1/chat/completions","body":{"model":"n"}}"#,
        );
        let items = openai_lines(file, "/v1/chat/completions").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[1].line, items[1].custom_id.as_str()), (1, "y"));
        assert_eq!(items[1].body, r#"{"model":"n"}"#);
        assert_eq!(openai_lines("\n", "/v1/chat/completions").unwrap_err()[0].code, "empty_file");
    }

    #[test]
    fn anthropic_requests_need_unique_ids_and_no_stream() {
        let body = json!({"requests": [
            {"custom_id": "one", "params": {"model": "m", "max_tokens": 5, "messages": []}},
            {"custom_id": "one", "params": {}},
            {"custom_id": "bad id!", "params": {}},
            {"custom_id": "s", "params": {"stream": true}},
        ]});
        let err = anthropic_requests(&body).unwrap_err();
        assert!(err.message.contains("requests.1.custom_id `one`"), "{}", err.message);
        assert!(err.message.contains("and 2 more"), "{}", err.message);
        assert_eq!(err.diagnosis.unwrap().id, "BAT-01");
        let ok = json!({"requests": [{"custom_id": "a-1", "params": {"model": "m"}}]});
        assert_eq!(anthropic_requests(&ok).unwrap()[0].custom_id, "a-1");
    }
}
