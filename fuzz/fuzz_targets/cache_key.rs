//! The response cache's key derivation over what each surface decodes: deterministic, a
//! sha256 in hex under the namespace asked for, and blind to what does not change an answer
//! (`user`, `stream`, gateway metadata). The first byte picks the surface.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use switchyard::cache::{Control, key};
use switchyard::surface::{anthropic, openai, responses};

fuzz_target!(|data: &[u8]| {
    let Some((&surface, body)) = data.split_first() else { return };
    let headers = HeaderMap::new();
    let chat = match surface % 3 {
        0 => openai::decode_chat_request(body).ok(),
        1 => anthropic::decode_messages_request(body, &headers).ok(),
        _ => responses::decode_responses_request(body).ok().map(|d| d.chat),
    };
    let Some(chat) = chat else { return };
    let control = Control::of(&chat, &headers, true);
    let ns = control.namespace.as_deref();
    let k = key(&chat, ns);
    assert_eq!(k, key(&chat.clone(), ns), "the same request gave two keys");
    let hex = match ns {
        Some(ns) => {
            k.strip_prefix(ns).and_then(|r| r.strip_prefix(':')).expect("the namespace leads")
        }
        None => &k,
    };
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "not a sha256: {k}");

    let mut other = chat.clone();
    other.user = Some("someone-else".into());
    other.stream = !other.stream;
    other.stream_usage = !other.stream_usage;
    other.gateway.insert("metadata".into(), json!({"tags": ["fuzz"]}));
    assert_eq!(k, key(&other, ns), "user, stream or metadata changed the key");
});
