//! The Anthropic Messages decoder (and count_tokens), and the body the gateway re-encodes
//! from it: a body sent upstream decodes again, and encoding is stable after one round.
#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::Providers;
use switchyard::surface::anthropic::{
    BETA_HEADER, decode_count_tokens_request, decode_messages_request,
};

static PROVIDERS: LazyLock<Providers> = LazyLock::new(Providers::new);

fuzz_target!(|data: &[u8]| {
    // A first line starting with `beta:` is the `anthropic-beta` header.
    let mut headers = HeaderMap::new();
    let mut body = data;
    if let Some(rest) = data.strip_prefix(b"beta:") {
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        if let Ok(v) = HeaderValue::from_bytes(&rest[..end]) {
            headers.insert(BETA_HEADER, v);
        }
        body = rest.get(end + 1..).unwrap_or_default();
    }
    let _ = decode_count_tokens_request(body, &headers);
    let Ok(req) = decode_messages_request(body, &headers) else { return };
    let _ = PROVIDERS.openai.body(&req);
    let Ok(first) = PROVIDERS.anthropic.body(&req) else { return };
    let again = decode_messages_request(&first, &headers).unwrap_or_else(|e| {
        panic!("the body sent upstream does not decode: {e:?}\n{}", String::from_utf8_lossy(&first))
    });
    let second = PROVIDERS.anthropic.body(&again).expect("a re-decoded request encodes");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "decode → encode → decode → encode changed the body"
    );
});
