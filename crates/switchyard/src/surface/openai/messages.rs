//! Converts OpenAI chat messages into canonical system blocks and messages: roles,
//! content parts, images, tool calls and tool results.
//!
//! Only reshapes what the client sent, naming the field path of anything it cannot
//! represent; never decides what an upstream supports.

use serde_json::{Map, Value};

use super::request::invalid;
use super::request_wire::{WireContent, WireMessage, WirePart, WireRole, WireToolCall};
use crate::canonical::{ContentBlock, ImageSource, Message, Role};
use crate::classify::ApiError;

/// System and developer messages become the canonical `system`; tool results become user
/// messages, consecutive ones merged (Anthropic requires user/assistant alternation). A
/// user message right after tool results joins them, after the results.
///
/// Field paths are only formatted on error: the success path allocates no strings.
pub(super) fn convert_messages(
    wire: Vec<WireMessage>,
) -> Result<(Vec<ContentBlock>, Vec<Message>), ApiError> {
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(wire.len());
    // Whether the last canonical message holds tool results that later ones may join.
    let mut open_tool_results = false;
    for (i, m) in wire.into_iter().enumerate() {
        match m.role {
            WireRole::System | WireRole::Developer => {
                // OpenAI refuses a system message without content; dropping it instead
                // would send the rest of the conversation without it.
                if m.content.is_none() {
                    return Err(invalid(&format!("messages[{i}].content"), MISSING));
                }
                let mut blocks = content_blocks(m.content, i, Allowed::Text)?;
                set_cache_control(&mut blocks, m.cache_control);
                system.extend(blocks);
                continue;
            }
            WireRole::User => {
                if m.content.is_none() {
                    return Err(invalid(&format!("messages[{i}].content"), MISSING));
                }
                let mut blocks = content_blocks(m.content, i, Allowed::TextAndImages)?;
                set_cache_control(&mut blocks, m.cache_control);
                match messages.last_mut() {
                    Some(last) if open_tool_results => last.content.extend(blocks),
                    _ => messages.push(Message { role: Role::User, content: blocks }),
                }
                open_tool_results = false;
            }
            WireRole::Assistant => {
                let calls = m.tool_calls.unwrap_or_default();
                let mut blocks = content_blocks(m.content, i, Allowed::Text)?;
                if !calls.is_empty() {
                    // `"content": ""` beside tool calls is common; Anthropic rejects empty text.
                    blocks.retain(
                        |b| !matches!(b, ContentBlock::Text { text, .. } if text.is_empty()),
                    );
                }
                blocks.reserve(calls.len());
                for (j, call) in calls.into_iter().enumerate() {
                    blocks.push(convert_tool_call(call, i, j)?);
                }
                set_cache_control(&mut blocks, m.cache_control);
                messages.push(Message { role: Role::Assistant, content: blocks });
                open_tool_results = false;
            }
            WireRole::Tool => {
                let Some(tool_use_id) = m.tool_call_id else {
                    return Err(invalid(&format!("messages[{i}].tool_call_id"), MISSING));
                };
                let content = match m.content {
                    Some(WireContent::Text(text)) if text.is_empty() => Vec::new(),
                    content => content_blocks(content, i, Allowed::TextAndImages)?,
                };
                let result = ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error: false,
                    cache_control: m.cache_control,
                };
                match messages.last_mut() {
                    Some(last) if open_tool_results => last.content.push(result),
                    _ => messages.push(Message { role: Role::User, content: vec![result] }),
                }
                open_tool_results = true;
            }
            WireRole::Function => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    "the legacy `function` role is not supported; send results as \
                     `{\"role\":\"tool\",\"tool_call_id\":...}` messages",
                ));
            }
        }
    }
    Ok((system, messages))
}

const MISSING: &str = "missing required field";

#[derive(Clone, Copy, PartialEq)]
enum Allowed {
    Text,
    TextAndImages,
}

/// The blocks of message `i`'s content.
fn content_blocks(
    content: Option<WireContent>,
    i: usize,
    allowed: Allowed,
) -> Result<Vec<ContentBlock>, ApiError> {
    match content {
        None => Ok(Vec::new()),
        Some(WireContent::Text(text)) => Ok(vec![ContentBlock::text(text)]),
        Some(WireContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                blocks.push(convert_part(part, allowed).map_err(|(field, problem)| {
                    invalid(&format!("messages[{i}].content[{j}].{field}"), problem)
                })?);
            }
            Ok(blocks)
        }
    }
}

/// One content part; an error names the field within the part and the problem.
fn convert_part(part: WirePart, allowed: Allowed) -> Result<ContentBlock, (&'static str, String)> {
    match part.kind.as_str() {
        "text" => match part.text {
            Some(text) => Ok(ContentBlock::Text { text, cache_control: part.cache_control }),
            None => Err(("text", MISSING.to_owned())),
        },
        "refusal" => match part.refusal {
            Some(text) => Ok(ContentBlock::Text { text, cache_control: part.cache_control }),
            None => Err(("refusal", MISSING.to_owned())),
        },
        "image_url" if allowed == Allowed::TextAndImages => {
            let Some(image) = part.image_url else {
                return Err(("image_url", MISSING.to_owned()));
            };
            let source = image_source(image.url).map_err(|p| ("image_url.url", p.to_owned()))?;
            Ok(ContentBlock::Image { source, cache_control: part.cache_control })
        }
        "image_url" => {
            Err(("type", "images are only allowed in user and tool messages".to_owned()))
        }
        other => Err((
            "type",
            format!("content part type `{other}` is not supported (use `text` or `image_url`)"),
        )),
    }
}

/// `data:<mime>[;params];base64,<data>` becomes an inline source; http(s) URLs stay URLs.
pub(crate) fn image_source(url: String) -> Result<ImageSource, &'static str> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err("a data URL needs a `,` before its data");
        };
        if !meta.ends_with(";base64") {
            return Err("image data URLs must be base64 (`data:image/png;base64,...`)");
        }
        let media_type = meta.split(';').next().unwrap_or_default();
        if media_type.is_empty() {
            return Err("a data URL needs a media type (`data:image/png;base64,...`)");
        }
        return Ok(ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if scheme.is_some_and(|s| s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http")) {
        return Ok(ImageSource::Url { url });
    }
    Err("expected an http(s) URL or a base64 data URL")
}

/// Tool call `j` of message `i`.
fn convert_tool_call(call: WireToolCall, i: usize, j: usize) -> Result<ContentBlock, ApiError> {
    let at = |field: &str| format!("messages[{i}].tool_calls[{j}].{field}");
    if let Some(kind) = call.kind.as_deref().filter(|k| *k != "function") {
        return Err(invalid(
            &at("type"),
            format_args!("tool call type `{kind}` is not supported (use `function`)"),
        ));
    }
    let input = match call.function.arguments {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(&s)
            .map_err(|e| invalid(&at("function.arguments"), format_args!("not valid JSON: {e}")))?,
        Some(other) => other,
    };
    if !input.is_object() {
        return Err(invalid(&at("function.arguments"), "must encode a JSON object"));
    }
    Ok(ContentBlock::ToolUse { id: call.id, name: call.function.name, input, cache_control: None })
}

/// OpenAI's message-level `cache_control` (a LiteLLM extension) marks the last block.
fn set_cache_control(blocks: &mut [ContentBlock], cache_control: Option<Value>) {
    let Some(cc) = cache_control else { return };
    match blocks.last_mut() {
        Some(
            ContentBlock::Text { cache_control, .. }
            | ContentBlock::Image { cache_control, .. }
            | ContentBlock::ToolUse { cache_control, .. }
            | ContentBlock::ToolResult { cache_control, .. },
        ) => *cache_control = Some(cc),
        Some(
            ContentBlock::Thinking { .. }
            | ContentBlock::RedactedThinking { .. }
            | ContentBlock::Other(_),
        )
        | None => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::request::tests::{decode, rejected};
    use super::*;

    #[test]
    fn nested_problems_name_their_paths() {
        let cases: &[(&str, &str)] = &[
            (r#"[{"role": "robot", "content": "x"}]"#, "messages[0].role"),
            (r#"[{"content": "x"}]"#, "messages[0].role"),
            (r#"[{"role": "user"}]"#, "messages[0].content"),
            (r#"[{"role": "system"}]"#, "messages[0].content"),
            (r#"[{"role": "user", "content": "x"}, {"role": "developer"}]"#, "messages[1].content"),
            (r#"[{"role": "user", "content": [{"type": "text"}]}]"#, "messages[0].content[0].text"),
            (
                r#"[{"role": "user", "content": [{"type": "input_audio"}]}]"#,
                "messages[0].content[0].type",
            ),
            (
                r#"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]"#,
                "messages[0].content[0].image_url.url",
            ),
            (
                r#"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/svg+xml,<svg/>"}}]}]"#,
                "messages[0].content[0].image_url.url",
            ),
            (
                r#"[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]"#,
                "messages[0].content[0].type",
            ),
            (r#"[{"role": "tool", "content": "x"}]"#, "messages[0].tool_call_id"),
            (r#"[{"role": "function", "name": "f", "content": "x"}]"#, "messages[0].role"),
            (
                r#"[{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]"#,
                "messages[0].tool_calls[0].function.name",
            ),
        ];
        for (messages, param) in cases {
            let body = format!(r#"{{"model": "m", "messages": {messages}}}"#);
            rejected(body.as_bytes(), Some(param));
        }
    }

    #[test]
    fn a_system_message_without_content_is_a_400_not_dropped() {
        // Found by fuzzing (fuzz/ openai_request): the message was dropped, and an upstream
        // was sent an empty `messages`.
        let body = br#"{"model":"balanced","messages":[{"role":"system","conontent":"Say: WORKS"}],"max_toke":0.2,"top_p":0.9,"stop":["END"," "],"user":"user-42","nmax_compl":2,"store":false}"#;
        rejected(body, Some("messages[0].content"));
    }

    #[test]
    fn bad_tool_call_arguments_json_is_a_400() {
        let body = br#"{"model": "m", "messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [
              {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\": "}}]}]}"#;
        let msg = rejected(body, Some("messages[1].tool_calls[0].function.arguments"));
        assert!(msg.contains("not valid JSON"), "{msg}");
        let body = br#"{"model": "m", "messages": [{"role": "assistant", "tool_calls": [
              {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}"#;
        rejected(body, Some("messages[0].tool_calls[0].function.arguments"));
    }

    #[test]
    fn assistant_text_is_kept_and_arguments_objects_are_tolerated() {
        let req = decode(json!({"model": "m", "messages": [
            {"role": "assistant", "content": "Checking", "tool_calls": [
                {"id": "c", "function": {"name": "f", "arguments": {"k": 1}}}]}]}))
        .unwrap();
        assert_eq!(
            req.messages[0].content,
            vec![
                ContentBlock::text("Checking"),
                ContentBlock::ToolUse {
                    id: "c".into(),
                    name: "f".into(),
                    input: json!({"k": 1}),
                    cache_control: None
                },
            ]
        );
    }

    #[test]
    fn images_accept_data_url_parameters_and_any_case_scheme() {
        assert_eq!(
            image_source("data:image/jpeg;name=a.jpg;base64,/9j/".into()),
            Ok(ImageSource::Base64 { media_type: "image/jpeg".into(), data: "/9j/".into() })
        );
        assert_eq!(
            image_source("HTTPS://x/a.png".into()),
            Ok(ImageSource::Url { url: "HTTPS://x/a.png".into() })
        );
        assert!(image_source("data:;base64,AAAA".into()).is_err());
        assert!(image_source("file:///etc/passwd".into()).is_err());
    }

    #[test]
    fn empty_tool_result_has_no_blocks_and_a_later_tool_result_starts_a_new_turn() {
        let req = decode(json!({"model": "m", "messages": [
            {"role": "tool", "tool_call_id": "a", "content": ""},
            {"role": "assistant", "content": "ok"},
            {"role": "tool", "tool_call_id": "b", "content": "x"}]}))
        .unwrap();
        let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
        assert_eq!(
            req.messages[0].content,
            vec![ContentBlock::ToolResult {
                tool_use_id: "a".into(),
                content: vec![],
                is_error: false,
                cache_control: None
            }]
        );
    }
}
