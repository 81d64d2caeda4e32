//! Who made a request and why: the gateway key (as LiteLLM stores it, a sha256 hex), its
//! alias, the end user, the request's tags and its session — read once from the request
//! headers, the key as presented and the decoded canonical request, for the ledger and for
//! per-key, per-user and per-tag reports.
//!
//! Where each comes from (first non-empty source wins; tags are merged):
//!
//! - `key_hash`: sha256 hex of the key exactly as presented (`sk-…`), LiteLLM's
//!   `hash_token`, so `"LiteLLM_SpendLogs".api_key` joins with LiteLLM's own key tables.
//! - `user`: the OpenAI `user` field or Anthropic's `metadata.user_id` (both are the
//!   canonical `user`), else `user_id` in LiteLLM's `metadata` / `litellm_metadata`.
//! - `tags`: `metadata.tags`, `litellm_metadata.tags`, a top-level `tags`, then the
//!   comma-separated `x-litellm-tags` header; trimmed, empty ones dropped, each kept once in
//!   that order.
//! - `session_id`: `metadata.session_id`, `litellm_metadata.session_id`, a top-level
//!   `litellm_session_id`, the `x-litellm-session-id` header, then the
//!   `x-claude-code-session-id` header Claude Code sends with every request, then the
//!   `session-id` header Codex sends with every request.
//!
//! Never holds the key itself: only its hash leaves this module.

use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::ChatRequest;

/// The request's attribution, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attribution {
    /// sha256 hex of the gateway key as presented; `None` when the request carried none
    /// (a gateway without a master key on loopback).
    pub key_hash: Option<String>,
    /// The key's alias, when the key has one (virtual keys).
    pub key_alias: Option<String>,
    pub user: Option<String>,
    pub tags: Vec<String>,
    pub session_id: Option<String>,
}

pub const TAGS_HEADER: &str = "x-litellm-tags";
pub const SESSION_HEADER: &str = "x-litellm-session-id";
pub const CLAUDE_CODE_SESSION_HEADER: &str = "x-claude-code-session-id";
pub const CODEX_SESSION_HEADER: &str = "session-id";

// The same names parsed once: a lookup by text parses the name on every request.
const TAGS: HeaderName = HeaderName::from_static(TAGS_HEADER);
const SESSION: HeaderName = HeaderName::from_static(SESSION_HEADER);
const CLAUDE_CODE_SESSION: HeaderName = HeaderName::from_static(CLAUDE_CODE_SESSION_HEADER);
const CODEX_SESSION: HeaderName = HeaderName::from_static(CODEX_SESSION_HEADER);

impl Attribution {
    /// Reads the attribution of one request. `key` is the gateway key as the client
    /// presented it (`Authorization: Bearer` or `x-api-key`), `key_alias` its alias.
    pub fn of(
        headers: &HeaderMap,
        key: Option<&str>,
        key_alias: Option<&str>,
        request: &ChatRequest,
    ) -> Self {
        let gw = &request.gateway;
        let metadata = object(gw, "metadata");
        let litellm_metadata = object(gw, "litellm_metadata");

        let user = end_user(request);

        let mut tags = request_tags(request);
        for value in headers.get_all(&TAGS) {
            if let Ok(text) = value.to_str() {
                add_tags(&mut tags, text.split(','));
            }
        }

        let session_id = string(metadata, "session_id")
            .or_else(|| string(litellm_metadata, "session_id"))
            .or_else(|| string(gw, "litellm_session_id"))
            .or_else(|| header(headers, &SESSION))
            .or_else(|| header(headers, &CLAUDE_CODE_SESSION))
            .or_else(|| header(headers, &CODEX_SESSION));

        Self {
            key_hash: key.filter(|k| !k.is_empty()).map(hash_key),
            key_alias: non_empty(key_alias),
            user,
            tags,
            session_id,
        }
    }
}

/// The request's end user: `user` (Anthropic's `metadata.user_id` decodes into it), else
/// `user_id` in LiteLLM's `metadata` or `litellm_metadata`.
/// The tags the request body carries (`metadata.tags`, `litellm_metadata.tags`, a top-level
/// `tags`), merged in that order, each once.
pub fn request_tags(request: &ChatRequest) -> Vec<String> {
    let gw = &request.gateway;
    let mut tags = Vec::new();
    for list in [
        object(gw, "metadata").get("tags"),
        object(gw, "litellm_metadata").get("tags"),
        gw.get("tags"),
    ] {
        add_tags(&mut tags, list.into_iter().flat_map(tag_values));
    }
    tags
}

/// Adds the `x-litellm-tags` header's tags to the request's top-level `tags`, so routing,
/// which sees only the request, sees them too. The merged order (and so the ledger's) is
/// unchanged: the header's tags came last and still do.
pub fn fold_header_tags(headers: &HeaderMap, request: &mut ChatRequest) {
    let mut from_header = Vec::new();
    for value in headers.get_all(&TAGS) {
        if let Ok(text) = value.to_str() {
            add_tags(&mut from_header, text.split(','));
        }
    }
    if from_header.is_empty() {
        return;
    }
    let gw = &mut request.gateway;
    let mut top = Vec::new();
    add_tags(&mut top, gw.get("tags").into_iter().flat_map(tag_values));
    add_tags(&mut top, from_header.iter().map(String::as_str));
    gw.insert("tags".to_owned(), Value::from(top));
}

pub fn end_user(request: &ChatRequest) -> Option<String> {
    let gw = &request.gateway;
    non_empty(request.user.as_deref())
        .or_else(|| string(object(gw, "metadata"), "user_id"))
        .or_else(|| string(object(gw, "litellm_metadata"), "user_id"))
}

/// LiteLLM's `hash_token`: the sha256 of the key's UTF-8 bytes, as lowercase hex.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

fn object<'a>(map: &'a Map<String, Value>, key: &str) -> &'a Map<String, Value> {
    map.get(key).and_then(Value::as_object).unwrap_or(&EMPTY)
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// A string value (a number is taken as its text: some clients send numeric ids).
fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => non_empty(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn header(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    non_empty(headers.get(name).and_then(|v| v.to_str().ok()))
}

/// The tags in a JSON value: a list of strings, or one comma-separated string.
fn tag_values(value: &Value) -> Vec<&str> {
    match value {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(text) => text.split(',').collect(),
        _ => Vec::new(),
    }
}

fn add_tags<'a>(tags: &mut Vec<String>, new: impl IntoIterator<Item = &'a str>) {
    for tag in new {
        let tag = tag.trim();
        if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;

    use super::*;

    fn request(user: Option<&str>, gateway: Value) -> ChatRequest {
        ChatRequest {
            model: "cheap".to_owned(),
            user: user.map(str::to_owned),
            gateway: gateway.as_object().cloned().unwrap_or_default(),
            ..ChatRequest::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn of(pairs: &[(&'static str, &str)], user: Option<&str>, gateway: Value) -> Attribution {
        Attribution::of(&headers(pairs), None, None, &request(user, gateway))
    }

    #[test]
    fn the_key_is_hashed_as_litellm_hashes_it() {
        // Python: hashlib.sha256(b"sk-1234").hexdigest()
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        let a = Attribution::of(
            &HeaderMap::new(),
            Some("sk-1234"),
            Some("ci"),
            &request(None, json!({})),
        );
        assert_eq!(a.key_hash.as_deref(), Some(hash_key("sk-1234").as_str()));
        assert_eq!(a.key_alias.as_deref(), Some("ci"));
        // No key presented (no master key, loopback): no hash, not the hash of "".
        let a = Attribution::of(&HeaderMap::new(), Some(""), None, &request(None, json!({})));
        assert_eq!(a.key_hash, None);
    }

    #[test]
    fn user_comes_from_the_request_then_litellm_metadata() {
        let a = of(&[], Some("alice"), json!({"metadata": {"user_id": "bob"}}));
        assert_eq!(a.user.as_deref(), Some("alice"));
        let a = of(&[], None, json!({"metadata": {"user_id": "bob"}}));
        assert_eq!(a.user.as_deref(), Some("bob"));
        let a = of(&[], Some("  "), json!({"litellm_metadata": {"user_id": 42}}));
        assert_eq!(a.user.as_deref(), Some("42"));
        assert_eq!(of(&[], None, json!({})).user, None);
    }

    #[test]
    fn tags_merge_every_source_in_order_each_once() {
        let a = of(
            &[(TAGS_HEADER, "team-a, prod,,search"), (TAGS_HEADER, "late")],
            None,
            json!({
                "metadata": {"tags": ["search", "eu"]},
                "litellm_metadata": {"tags": ["eu", "batch"]},
                "tags": ["prod", " eu "],
            }),
        );
        assert_eq!(a.tags, ["search", "eu", "batch", "prod", "team-a", "late"]);
        // A comma-separated string in the body counts too; other types are ignored.
        let a = of(&[], None, json!({"tags": "x, y", "metadata": {"tags": 3}}));
        assert_eq!(a.tags, ["x", "y"]);
        assert!(of(&[], None, json!({})).tags.is_empty());
    }

    #[test]
    fn session_id_prefers_the_body_then_litellm_s_header_then_claude_code_s() {
        let all = [(SESSION_HEADER, "from-header"), (CLAUDE_CODE_SESSION_HEADER, "from-claude")];
        let body = json!({
            "metadata": {"session_id": "from-metadata"},
            "litellm_metadata": {"session_id": "from-litellm-metadata"},
            "litellm_session_id": "from-top-level",
        });
        assert_eq!(of(&all, None, body).session_id.as_deref(), Some("from-metadata"));
        let body = json!({"litellm_metadata": {"session_id": "a"}, "litellm_session_id": "b"});
        assert_eq!(of(&all, None, body).session_id.as_deref(), Some("a"));
        let body = json!({"litellm_session_id": "from-top-level"});
        assert_eq!(of(&all, None, body).session_id.as_deref(), Some("from-top-level"));
        assert_eq!(of(&all, None, json!({})).session_id.as_deref(), Some("from-header"));
        assert_eq!(of(&all[1..], None, json!({})).session_id.as_deref(), Some("from-claude"));
        assert_eq!(of(&[(SESSION_HEADER, " ")], None, json!({})).session_id, None);
    }

    #[test]
    fn a_codex_request_is_attributed_to_its_session_unless_a_launcher_named_one() {
        // What Codex 0.171.0 sends (captured): `session-id` and `thread-id` headers, both its
        // session's uuid; `switchyard codex` adds `x-litellm-session-id`, which wins.
        let codex = [(CODEX_SESSION_HEADER, "01a23f1e-294b"), ("thread-id", "01a23f1e-294b")];
        assert_eq!(of(&codex, None, json!({})).session_id.as_deref(), Some("01a23f1e-294b"));
        let launched = [codex[0], (SESSION_HEADER, "codex-20261204-1")];
        assert_eq!(of(&launched, None, json!({})).session_id.as_deref(), Some("codex-20261204-1"));
    }

    #[test]
    fn a_claude_code_request_is_attributed_to_its_session() {
        // What Claude Code 2.1.332 sends (captured): the session in a header, and
        // `metadata.user_id` as a JSON string, which the Anthropic surface makes `user`.
        let user = r#"{"device_id":"ca97","account_uuid":"","session_id":"f1bb5603"}"#;
        let a = Attribution::of(
            &headers(&[("x-claude-code-session-id", "f1bb5603"), ("x-api-key", "sk-gw")]),
            Some("sk-gw"),
            None,
            &request(Some(user), json!({})),
        );
        assert_eq!(a.session_id.as_deref(), Some("f1bb5603"));
        assert_eq!(a.user.as_deref(), Some(user));
        assert_eq!(a.key_hash, Some(hash_key("sk-gw")));
    }

    #[test]
    fn both_surfaces_keep_every_source_and_send_none_upstream() {
        use crate::surface::{anthropic, openai};
        let body = json!({
            "model": "cheap", "max_tokens": 10, "user": "alice",
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"tags": ["a"], "session_id": "s1"},
            "tags": ["b"], "litellm_session_id": "s2",
        });
        let chat = openai::decode_chat_request(body.to_string().as_bytes()).unwrap();
        assert!(!chat.extra.contains_key("litellm_session_id"), "never forwarded upstream");
        let a = Attribution::of(&headers(&[(TAGS_HEADER, "c")]), None, None, &chat);
        assert_eq!((a.user.as_deref(), a.session_id.as_deref()), (Some("alice"), Some("s1")));
        assert_eq!(a.tags, ["a", "b", "c"]);

        let body = json!({
            "model": "cheap", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"user_id": "bob", "tags": ["a"]},
            "litellm_metadata": {"tags": ["b"]}, "litellm_session_id": "s2",
        });
        let chat =
            anthropic::decode_messages_request(body.to_string().as_bytes(), &HeaderMap::new())
                .unwrap();
        assert!(!chat.extra.contains_key("litellm_session_id"), "never forwarded upstream");
        let a = Attribution::of(&HeaderMap::new(), None, None, &chat);
        assert_eq!((a.user.as_deref(), a.session_id.as_deref()), (Some("bob"), Some("s2")));
        assert_eq!(a.tags, ["a", "b"]);
    }
}
