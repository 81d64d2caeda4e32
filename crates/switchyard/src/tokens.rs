//! A deterministic token-count estimate, for answers that have no upstream tokenizer
//! behind them (mock responses) and for rough budgeting.
//!
//! Never claims precision: real counts come from the upstream's `usage`. Pure functions,
//! no I/O, no dependence on any provider.

use crate::canonical::{ChatRequest, ContentBlock};

/// Tokens added per message for role and separators (OpenAI documents about 3).
const PER_MESSAGE: u64 = 3;
/// A flat charge per image: its size is unknown here (OpenAI's low-detail cost is 85).
const PER_IMAGE: u64 = 85;

/// Estimated tokens in `text`: each run of letters and digits counts one token per
/// started 4 characters (BPE vocabularies hold most short words whole and split long
/// ones), each other visible character (punctuation, symbols) counts one, whitespace
/// counts nothing. Non-empty text is at least 1 token; empty text is 0.
pub fn estimate(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut run = 0u64;
    for c in text.chars() {
        if c.is_alphanumeric() {
            run += 1;
            continue;
        }
        tokens += run.div_ceil(4);
        run = 0;
        if !c.is_whitespace() {
            tokens += 1;
        }
    }
    tokens += run.div_ceil(4);
    if tokens == 0 && !text.is_empty() { 1 } else { tokens }
}

/// Estimated input tokens of a request: system, messages (with a per-message overhead)
/// and tool definitions.
pub fn estimate_request(req: &ChatRequest) -> u64 {
    let system: u64 = req.system.iter().map(estimate_block).sum();
    let messages: u64 = req
        .messages
        .iter()
        .map(|m| PER_MESSAGE + m.content.iter().map(estimate_block).sum::<u64>())
        .sum();
    let tools: u64 = req
        .tools
        .iter()
        .map(|t| {
            estimate(&t.name)
                + t.description.as_deref().map_or(0, estimate)
                + estimate(&t.input_schema.to_string())
        })
        .sum();
    system + messages + tools
}

fn estimate_block(block: &ContentBlock) -> u64 {
    match block {
        ContentBlock::Text { text, .. } => estimate(text),
        ContentBlock::Image { .. } => PER_IMAGE,
        ContentBlock::ToolUse { name, input, .. } => estimate(name) + estimate(&input.to_string()),
        ContentBlock::ToolResult { content, .. } => content.iter().map(estimate_block).sum(),
        ContentBlock::Thinking { thinking, .. } => estimate(thinking),
        ContentBlock::RedactedThinking { data } => estimate(data),
        ContentBlock::Other(fields) => serde_json::to_string(fields).map_or(0, |s| estimate(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Message, Role};

    #[test]
    fn empty_text_is_zero_and_any_other_text_at_least_one() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate(" "), 1);
        assert_eq!(estimate("a"), 1);
    }

    #[test]
    fn words_count_per_four_characters_and_punctuation_counts_one() {
        assert_eq!(estimate("WORKS"), 2);
        assert_eq!(estimate("Say: WORKS"), 4); // say, :, WORK, S
        assert_eq!(estimate("the cat sat"), 3);
        assert_eq!(estimate("internationalization"), 5);
        assert_eq!(estimate("héllo wörld"), 4);
    }

    #[test]
    fn estimate_is_deterministic_and_grows_with_text() {
        let short = "one two three";
        let long = short.repeat(10);
        assert_eq!(estimate(short), estimate(short));
        assert!(estimate(&long) > estimate(short));
    }

    #[test]
    fn request_counts_system_messages_and_overhead() {
        let req = ChatRequest {
            system: vec![ContentBlock::text("Be brief.")],
            messages: vec![Message {
                role: Role::User,
                content: vec![ContentBlock::text("Say: WORKS")],
            }],
            ..ChatRequest::default()
        };
        // "Be brief." = be, brie, f, . = 4; message = 3 + 4.
        assert_eq!(estimate_request(&req), 4 + PER_MESSAGE + 4);
    }
}
