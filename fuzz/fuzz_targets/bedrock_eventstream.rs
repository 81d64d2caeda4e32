//! The AWS event-stream decoding of Bedrock streams (InvokeModelWithResponseStream and
//! ConverseStream), split at the byte boundaries the input picks. The first byte picks the
//! API, the `response_format` mode and the piece size.
#![no_main]

use std::sync::LazyLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::{Providers, Upstream, stream};

static PROVIDERS: LazyLock<Providers> = LazyLock::new(Providers::new);

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else { return };
    let json_mode = control & 2 != 0;
    let upstream = if control & 1 == 0 {
        Upstream::BedrockInvoke { json_mode }
    } else {
        Upstream::BedrockConverse { json_mode }
    };
    let split = match control >> 2 {
        0 => body.len().max(1),
        n => usize::from(n),
    };
    let chunks: Vec<Bytes> = body.chunks(split).map(Bytes::copy_from_slice).collect();
    let items = stream(&PROVIDERS, upstream, chunks);
    if let Some(i) = items.iter().position(Result::is_err) {
        assert_eq!(i + 1, items.len(), "items after an error: {items:?}");
    }
    assert!(!items.is_empty(), "a stream that gave neither an event nor an error");
});
