//! Batches and files in the clients' shapes: OpenAI's `Batch`, `FileObject` and batch
//! output lines; Anthropic's `MessageBatch` and result lines. Built from the store's rows
//! only; nothing here decides a state.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use super::model::{BatchRow, FileRow, ItemResult, ItemState, Status};

/// OpenAI's `FileObject`.
pub fn file_object(f: &FileRow) -> Value {
    json!({
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": f.created_at,
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
        "expires_at": null,
        "status_details": null,
    })
}

/// OpenAI's `Batch`.
pub fn openai_batch(b: &BatchRow) -> Value {
    let c = &b.counts;
    json!({
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": b.errors.as_ref().map(|data| json!({"object": "list", "data": data})),
        "input_file_id": b.input_file_id,
        "completion_window": b.completion_window,
        "status": b.status.as_str(),
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": b.created_at,
        "in_progress_at": b.in_progress_at,
        "expires_at": b.expires_at,
        "finalizing_at": b.finalizing_at,
        "completed_at": b.completed_at,
        "failed_at": b.failed_at,
        "expired_at": b.expired_at,
        "cancelling_at": b.cancelling_at,
        "cancelled_at": b.cancelled_at,
        "request_counts": {
            "total": c.total(),
            "completed": c.succeeded,
            "failed": c.errored + c.expired + c.canceled,
        },
        "metadata": b.metadata,
    })
}

fn rfc3339(unix: i64) -> Value {
    DateTime::from_timestamp(unix, 0)
        .map_or(Value::Null, |t| Value::from(t.to_rfc3339_opts(SecondsFormat::Secs, true)))
}

/// When the batch ended (Anthropic's `ended_at`).
fn ended_at(b: &BatchRow) -> Option<i64> {
    if b.status.is_open() {
        return None;
    }
    b.completed_at.or(b.cancelled_at).or(b.expired_at).or(b.failed_at)
}

/// Anthropic's `MessageBatch`; `base` is the gateway's URL as the client reached it (for
/// `results_url`, set once the batch has ended).
pub fn anthropic_batch(b: &BatchRow, base: &str) -> Value {
    let c = &b.counts;
    let ended = ended_at(b);
    json!({
        "id": b.id,
        "type": "message_batch",
        "processing_status": b.status.anthropic(),
        "request_counts": {
            "processing": c.processing(),
            "succeeded": c.succeeded,
            "errored": c.errored,
            "canceled": c.canceled,
            "expired": c.expired,
        },
        "ended_at": ended.map_or(Value::Null, rfc3339),
        "created_at": rfc3339(b.created_at),
        "expires_at": rfc3339(b.expires_at),
        "archived_at": null,
        "cancel_initiated_at": b.cancelling_at.map_or(Value::Null, rfc3339),
        "results_url": ended.map(|_| format!("{base}/v1/messages/batches/{}/results", b.id)),
    })
}

fn parsed(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null)
}

/// The id OpenAI gives one request of a batch (`batch_req_…`), stable per item.
fn request_object_id(batch_id: &str, line: i64) -> String {
    let tail = batch_id.strip_prefix("batch_").unwrap_or(batch_id);
    format!("batch_req_{tail}_{line}")
}

/// An OpenAI batch's output file (answered requests, status 200) and error file (every
/// other request: refused or failed with its status and error body, or never run), as
/// JSONL; `None` for a file that would be empty.
pub fn openai_files(b: &BatchRow, items: &[ItemResult]) -> (Option<String>, Option<String>) {
    let mut output = String::new();
    let mut errors = String::new();
    for item in items {
        let id = request_object_id(&b.id, item.line);
        let (line, into) = match item.state {
            ItemState::Succeeded => (
                json!({
                    "id": id,
                    "custom_id": item.custom_id,
                    "response": {
                        "status_code": item.status_code.unwrap_or(200),
                        "request_id": item.request_id,
                        "body": parsed(item.result.as_deref()),
                    },
                    "error": null,
                }),
                &mut output,
            ),
            ItemState::Errored => (
                json!({
                    "id": id,
                    "custom_id": item.custom_id,
                    "response": {
                        "status_code": item.status_code.unwrap_or(500),
                        "request_id": item.request_id,
                        "body": parsed(item.result.as_deref()),
                    },
                    "error": null,
                }),
                &mut errors,
            ),
            ItemState::Canceled | ItemState::Expired | ItemState::Queued | ItemState::Running => {
                let (code, message) = if item.state == ItemState::Expired {
                    (
                        "batch_expired",
                        "This request could not be executed before the completion window expired.",
                    )
                } else {
                    (
                        "batch_cancelled",
                        "This request was not executed because the batch was cancelled.",
                    )
                };
                (
                    json!({
                        "id": id,
                        "custom_id": item.custom_id,
                        "response": null,
                        "error": {"code": code, "message": message},
                    }),
                    &mut errors,
                )
            }
        };
        into.push_str(&line.to_string());
        into.push('\n');
    }
    let some = |s: String| (!s.is_empty()).then_some(s);
    (some(output), some(errors))
}

/// Anthropic's results: one `{custom_id, result}` line per request, in request order.
pub fn anthropic_results(items: &[ItemResult]) -> String {
    let mut out = String::new();
    for item in items {
        let result = match item.state {
            ItemState::Succeeded => {
                json!({"type": "succeeded", "message": parsed(item.result.as_deref())})
            }
            ItemState::Errored => {
                json!({"type": "errored", "error": parsed(item.result.as_deref())})
            }
            ItemState::Expired => json!({"type": "expired"}),
            ItemState::Canceled | ItemState::Queued | ItemState::Running => {
                json!({"type": "canceled"})
            }
        };
        out.push_str(&json!({"custom_id": item.custom_id, "result": result}).to_string());
        out.push('\n');
    }
    out
}

/// The final status of a batch whose items have all finished.
pub fn final_status(from: Status, items: &[ItemResult]) -> Status {
    if from == Status::Cancelling {
        Status::Cancelled
    } else if items.iter().any(|i| i.state == ItemState::Expired) {
        Status::Expired
    } else {
        Status::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batches::model::{Counts, Surface};

    fn batch(status: Status) -> BatchRow {
        BatchRow {
            id: "batch_abc".into(),
            surface: Surface::OpenAi,
            owner: String::new(),
            owner_alias: None,
            endpoint: "/v1/chat/completions".into(),
            input_file_id: Some("file-1".into()),
            completion_window: "24h".into(),
            status,
            metadata: None,
            errors: None,
            created_at: 1_700_000_000,
            in_progress_at: Some(1_700_000_000),
            finalizing_at: None,
            completed_at: Some(1_700_000_060),
            failed_at: None,
            expired_at: None,
            cancelling_at: None,
            cancelled_at: None,
            expires_at: 1_700_086_400,
            output_file_id: None,
            error_file_id: None,
            upstream_id: None,
            counts: Counts { succeeded: 1, errored: 1, ..Counts::default() },
        }
    }

    fn item(line: i64, state: ItemState, status: Option<i64>, result: Option<&str>) -> ItemResult {
        ItemResult {
            line,
            custom_id: format!("c{line}"),
            state,
            status_code: status,
            result: result.map(str::to_owned),
            request_id: format!("batch_abc-{line}"),
        }
    }

    #[test]
    fn answers_go_to_the_output_file_and_the_rest_to_the_error_file() {
        let items = [
            item(0, ItemState::Succeeded, Some(200), Some(r#"{"id":"chatcmpl-1"}"#)),
            item(1, ItemState::Errored, Some(429), Some(r#"{"error":{"message":"budget"}}"#)),
            item(2, ItemState::Canceled, None, None),
        ];
        let (out, err) = openai_files(&batch(Status::Completed), &items);
        let out: Value = serde_json::from_str(out.unwrap().trim()).unwrap();
        assert_eq!(out["custom_id"], "c0");
        assert_eq!(out["response"]["status_code"], 200);
        assert_eq!(out["response"]["body"]["id"], "chatcmpl-1");
        assert_eq!(out["id"], "batch_req_abc_0");
        let err: Vec<Value> =
            err.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(err[0]["response"]["status_code"], 429);
        assert_eq!(err[1]["error"]["code"], "batch_cancelled");
        assert_eq!(err[1]["response"], Value::Null);
    }

    #[test]
    fn anthropic_sees_ended_batches_with_a_results_url() {
        let b = batch(Status::Completed);
        let v = anthropic_batch(&b, "http://127.0.0.1:4000");
        assert_eq!(v["processing_status"], "ended");
        assert_eq!(v["ended_at"], "2023-11-14T22:14:20Z");
        assert_eq!(v["results_url"], "http://127.0.0.1:4000/v1/messages/batches/batch_abc/results");
        let open = anthropic_batch(&batch(Status::InProgress), "http://h");
        assert_eq!(open["results_url"], Value::Null);
        assert_eq!(open["processing_status"], "in_progress");
    }

    #[test]
    fn anthropic_result_lines_name_their_type() {
        let lines = anthropic_results(&[
            item(0, ItemState::Succeeded, Some(200), Some(r#"{"id":"msg_1"}"#)),
            item(1, ItemState::Errored, Some(400), Some(r#"{"type":"error"}"#)),
            item(2, ItemState::Canceled, None, None),
            item(3, ItemState::Expired, None, None),
        ]);
        let types: Vec<String> = lines
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["result"]["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(types, ["succeeded", "errored", "canceled", "expired"]);
    }
}
