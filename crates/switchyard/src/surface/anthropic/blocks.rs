//! Types Anthropic content blocks into canonical [`ContentBlock`]s.
//!
//! A block the canonical model interprets (text, image, tool_use, tool_result, thinking,
//! redacted_thinking) is typed and validated, naming the field at fault. Any other block
//! type — and a known type carrying fields the canonical variant does not hold
//! (`citations`, an image `file` source …) — is kept verbatim as [`ContentBlock::Other`],
//! so an Anthropic upstream receives exactly what the client sent. Never drops a field.

use serde_json::Value;

use super::request::{invalid, typed};
use super::request_wire::{
    Object, StringOrBlocks, WireImage, WireImageSource, WireRedactedThinking, WireText,
    WireThinking, WireToolResult, WireToolUse,
};
use crate::canonical::{ContentBlock, ImageSource};
use crate::classify::ApiError;

/// A message's (or tool result's) content at path `at`. An empty string is no blocks: the
/// API rejects an empty text block but accepts an empty final assistant turn.
pub(super) fn content(content: StringOrBlocks, at: &str) -> Result<Vec<ContentBlock>, ApiError> {
    match content {
        StringOrBlocks::Text(text) if text.is_empty() => Ok(Vec::new()),
        StringOrBlocks::Text(text) => Ok(vec![ContentBlock::text(text)]),
        StringOrBlocks::Blocks(list) => {
            let mut blocks = Vec::with_capacity(list.len());
            for (j, object) in list.into_iter().enumerate() {
                blocks.push(block(object, &format!("{at}[{j}]"))?);
            }
            Ok(blocks)
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Image,
    ToolUse,
    ToolResult,
    Thinking,
    RedactedThinking,
}

impl Kind {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "text" => Self::Text,
            "image" => Self::Image,
            "tool_use" => Self::ToolUse,
            "tool_result" => Self::ToolResult,
            "thinking" => Self::Thinking,
            "redacted_thinking" => Self::RedactedThinking,
            _ => return None,
        })
    }

    /// The fields the canonical variant holds.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Text => &["type", "text", "cache_control"],
            Self::Image => &["type", "source", "cache_control"],
            Self::ToolUse => &["type", "id", "name", "input", "cache_control"],
            Self::ToolResult => &["type", "tool_use_id", "content", "is_error", "cache_control"],
            Self::Thinking => &["type", "thinking", "signature"],
            Self::RedactedThinking => &["type", "data"],
        }
    }
}

/// One block at path `at`.
pub(super) fn block(object: Object, at: &str) -> Result<ContentBlock, ApiError> {
    let kind = match object.get("type") {
        Some(Value::String(name)) => Kind::of(name),
        Some(_) => return Err(invalid(&format!("{at}.type"), "must be a string")),
        None => return Err(invalid(&format!("{at}.type"), "missing required field")),
    };
    let Some(kind) = kind else {
        return Ok(ContentBlock::Other(object));
    };
    let source_fits = match kind {
        Kind::Image => match image_source_fits(&object) {
            Some(fits) => fits,
            // A source type the canonical model has no variant for (`file` …).
            None => return Ok(ContentBlock::Other(object)),
        },
        _ => true,
    };
    let fits = source_fits && object.keys().all(|k| kind.fields().contains(&k.as_str()));
    if fits {
        return typed_block(kind, object, at);
    }
    // Validate what the gateway reads, then keep the whole block as sent.
    typed_block(kind, object.clone(), at)?;
    Ok(ContentBlock::Other(object))
}

/// Whether an image's source maps onto [`ImageSource`] without losing a field; `None` for
/// a source type it has no variant for. A malformed source counts as fitting, so typing
/// reports it.
fn image_source_fits(object: &Object) -> Option<bool> {
    let Some(source) = object.get("source").and_then(Value::as_object) else {
        return Some(true);
    };
    let fields: &[&str] = match source.get("type") {
        Some(Value::String(t)) if t == "base64" => &["type", "media_type", "data"],
        Some(Value::String(t)) if t == "url" => &["type", "url"],
        Some(Value::String(_)) => return None,
        _ => return Some(true),
    };
    Some(source.keys().all(|k| fields.contains(&k.as_str())))
}

fn typed_block(kind: Kind, object: Object, at: &str) -> Result<ContentBlock, ApiError> {
    let value = Value::Object(object);
    Ok(match kind {
        Kind::Text => {
            let b: WireText = typed(value, at)?;
            ContentBlock::Text { text: b.text, cache_control: b.cache_control }
        }
        Kind::Image => {
            let b: WireImage = typed(value, at)?;
            let source = match b.source {
                WireImageSource::Base64 { media_type, data } => {
                    ImageSource::Base64 { media_type, data }
                }
                WireImageSource::Url { url } => ImageSource::Url { url },
            };
            ContentBlock::Image { source, cache_control: b.cache_control }
        }
        Kind::ToolUse => {
            let b: WireToolUse = typed(value, at)?;
            if !b.input.is_object() {
                return Err(invalid(&format!("{at}.input"), "must be an object"));
            }
            ContentBlock::ToolUse {
                id: b.id,
                name: b.name,
                input: b.input,
                cache_control: b.cache_control,
            }
        }
        Kind::ToolResult => {
            let b: WireToolResult = typed(value, at)?;
            let content = match b.content {
                None => Vec::new(),
                Some(c) => content(c, &format!("{at}.content"))?,
            };
            ContentBlock::ToolResult {
                tool_use_id: b.tool_use_id,
                content,
                is_error: b.is_error.unwrap_or(false),
                cache_control: b.cache_control,
            }
        }
        Kind::Thinking => {
            let b: WireThinking = typed(value, at)?;
            ContentBlock::Thinking { thinking: b.thinking, signature: b.signature }
        }
        Kind::RedactedThinking => {
            let b: WireRedactedThinking = typed(value, at)?;
            ContentBlock::RedactedThinking { data: b.data }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::classify::ErrorKind;

    fn one(v: Value) -> Result<ContentBlock, ApiError> {
        let Value::Object(object) = v else { unreachable!() };
        block(object, "messages[0].content[0]")
    }

    fn rejected(v: Value, path: &str) -> String {
        let err = one(v).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert_eq!(err.param.as_deref(), Some(path), "{}", err.message);
        assert!(err.message.starts_with(&format!("{path}: ")), "{}", err.message);
        err.message
    }

    #[test]
    fn unknown_block_types_are_kept_verbatim() {
        let blocks = [
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                "data": "JVBERi0"}, "title": "t", "cache_control": {"type": "ephemeral"}}),
            json!({"type": "tool_reference", "tool_name": "WebFetch"}),
            json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                "input": {"query": "q"}}),
            json!({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
        ];
        for b in blocks {
            let Value::Object(object) = b.clone() else { unreachable!() };
            assert_eq!(one(b).unwrap(), ContentBlock::Other(object));
        }
    }

    #[test]
    fn known_types_with_fields_canonical_lacks_are_kept_verbatim_but_validated() {
        let cited = json!({"type": "text", "text": "x", "citations": [{"type": "char_location"}]});
        let Value::Object(object) = cited.clone() else { unreachable!() };
        assert_eq!(one(cited).unwrap(), ContentBlock::Other(object));

        let file = json!({"type": "image", "source": {"type": "file", "file_id": "file_1"}});
        assert!(matches!(one(file).unwrap(), ContentBlock::Other(_)));

        let msg = rejected(
            json!({"type": "text", "text": 5, "citations": []}),
            "messages[0].content[0].text",
        );
        assert_eq!(
            msg,
            "messages[0].content[0].text: invalid type: integer `5`, expected a string"
        );
    }

    #[test]
    fn tool_result_content_may_be_a_string_blocks_or_absent() {
        let string = one(json!({"type": "tool_result", "tool_use_id": "t", "content": "18C",
            "is_error": true}))
        .unwrap();
        assert_eq!(
            string,
            ContentBlock::ToolResult {
                tool_use_id: "t".into(),
                content: vec![ContentBlock::text("18C")],
                is_error: true,
                cache_control: None,
            }
        );
        let absent = one(json!({"type": "tool_result", "tool_use_id": "t"})).unwrap();
        assert!(matches!(absent, ContentBlock::ToolResult { ref content, is_error: false, .. }
            if content.is_empty()));
        let nested = one(json!({"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "text", "text": "a"},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
        ]}))
        .unwrap();
        let ContentBlock::ToolResult { content, .. } = nested else { unreachable!() };
        assert_eq!(content.len(), 2);
        assert!(matches!(content[1], ContentBlock::Image { source: ImageSource::Url { .. }, .. }));
    }

    #[test]
    fn malformed_blocks_name_their_field() {
        let at = "messages[0].content[0]";
        let cases = [
            (json!({"text": "x"}), format!("{at}.type")),
            (json!({"type": 3}), format!("{at}.type")),
            (json!({"type": "text"}), format!("{at}.text")),
            (
                json!({"type": "image", "source": {"type": "base64", "data": "x"}}),
                format!("{at}.source.media_type"),
            ),
            (json!({"type": "image", "source": {"data": "x"}}), format!("{at}.source.type")),
            (json!({"type": "image"}), format!("{at}.source")),
            (
                json!({"type": "tool_use", "id": "t", "name": "f", "input": "{}"}),
                format!("{at}.input"),
            ),
            (json!({"type": "tool_use", "id": "t", "input": {}}), format!("{at}.name")),
            (json!({"type": "tool_result", "content": "x"}), format!("{at}.tool_use_id")),
            (
                json!({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}),
                format!("{at}.content[0].text"),
            ),
            (
                json!({"type": "tool_result", "tool_use_id": "t", "content": 7}),
                format!("{at}.content"),
            ),
            (
                json!({"type": "tool_result", "tool_use_id": "t", "is_error": "no"}),
                format!("{at}.is_error"),
            ),
            (json!({"type": "thinking", "signature": "s"}), format!("{at}.thinking")),
            (json!({"type": "redacted_thinking"}), format!("{at}.data")),
        ];
        for (block, path) in cases {
            rejected(block, &path);
        }
    }
}
