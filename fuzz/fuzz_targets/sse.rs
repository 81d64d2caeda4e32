//! The SSE parsing of upstream streams: Anthropic Messages events and OpenAI chat completion
//! chunks and Responses events, split at the byte boundaries the input picks, read exactly as
//! a live answer is. The first byte picks the format and the piece size.
#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::{Providers, Upstream, stream};

static PROVIDERS: LazyLock<Providers> = LazyLock::new(Providers::new);

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else { return };
    let upstream = match control & 3 {
        0 => Upstream::Anthropic { json_mode: false },
        1 => Upstream::Anthropic { json_mode: true },
        2 => Upstream::OpenAiChat,
        _ => Upstream::OpenAiResponses,
    };
    let split = match control >> 2 {
        0 => body.len().max(1),
        n => usize::from(n),
    };
    let chunks: Vec<Bytes> = body.chunks(split).map(Bytes::copy_from_slice).collect();
    let items = stream(&PROVIDERS, upstream, chunks);
    // An error ends a stream: nothing may follow it.
    if let Some(i) = items.iter().position(Result::is_err) {
        assert_eq!(i + 1, items.len(), "items after an error: {items:?}");
    }
    assert!(!items.is_empty(), "a stream that gave neither an event nor an error");
});
