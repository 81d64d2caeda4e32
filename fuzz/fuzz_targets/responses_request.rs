//! The Responses API decoder, and both providers' bodies for what it decodes to.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::Providers;
use switchyard::surface::responses::decode_responses_request;

static PROVIDERS: LazyLock<Providers> = LazyLock::new(Providers::new);

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = decode_responses_request(data) else { return };
    let refusal = decoded.refuse_built_in(&decoded.chat.model);
    assert_eq!(
        refusal.is_some(),
        !decoded.built_in.is_empty(),
        "hosted tools are refused, and only they"
    );
    let _ = PROVIDERS.anthropic.body(&decoded.chat);
    let _ = PROVIDERS.openai.body(&decoded.chat);
});
