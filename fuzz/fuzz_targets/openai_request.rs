//! The OpenAI chat completions decoder, and the body the gateway re-encodes from it: a body
//! the gateway sends upstream decodes again, and encoding is stable after one round.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::Providers;
use switchyard::surface::openai::decode_chat_request;

static PROVIDERS: LazyLock<Providers> = LazyLock::new(Providers::new);

fuzz_target!(|data: &[u8]| {
    let Ok(req) = decode_chat_request(data) else { return };
    // The translation to the other provider's shape must answer, never panic.
    let _ = PROVIDERS.anthropic.body(&req);
    let Ok(first) = PROVIDERS.openai.body(&req) else { return };
    let again = decode_chat_request(&first).unwrap_or_else(|e| {
        panic!("the body sent upstream does not decode: {e:?}\n{}", String::from_utf8_lossy(&first))
    });
    let second = PROVIDERS.openai.body(&again).expect("a re-decoded request encodes");
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second),
        "decode → encode → decode → encode changed the body"
    );
});
