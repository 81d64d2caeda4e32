//! A client's JSON body as its top-level members, each value kept as the client's bytes, and
//! the same body rebuilt with a few members replaced, dropped or added — one pass over the
//! input, no JSON tree.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::canonical::Dialect;

/// The body a client sent, in the dialect its route speaks.
#[derive(Debug, Clone)]
pub struct RawBody {
    pub dialect: Dialect,
    bytes: Bytes,
    members: Vec<Member>,
}

#[derive(Debug, Clone)]
struct Member {
    /// The key's text, without its quotes.
    key: Range<usize>,
    /// The value's JSON text.
    value: Range<usize>,
}

/// What becomes of one member when the body is rebuilt.
pub enum Edit<'a> {
    Keep,
    Drop,
    /// The value's new JSON text.
    Set(Cow<'a, [u8]>),
}

impl RawBody {
    /// `None` for a body the fast path does not take: not a JSON object, a key written with
    /// escapes, a key given twice. Such a body goes the canonical way, which decides as it
    /// always did.
    pub fn parse(bytes: Bytes, dialect: Dialect) -> Option<Self> {
        let Members(found) = serde_json::from_slice::<Members<'_>>(&bytes).ok()?;
        let base = bytes.as_ptr() as usize;
        let range = |s: &str| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        let mut members = Vec::with_capacity(found.len());
        for (i, (key, value)) in found.iter().enumerate() {
            if found[..i].iter().any(|(k, _)| k == key) {
                return None;
            }
            members.push(Member { key: range(key), value: range(value.get()) });
        }
        Some(Self { dialect, bytes, members })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| self.text(&m.key))
    }

    /// A member's value as the client wrote it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|m| self.text(&m.key) == key).map(|m| self.text(&m.value))
    }

    /// The body with each member decided by `edit` (in the client's order), then each of
    /// `append` whose key is not in it by then (absent, or dropped).
    pub fn rebuild<'s>(
        &'s self,
        mut edit: impl FnMut(&str, &'s str) -> Edit<'s>,
        append: &[(&str, &[u8])],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes.len() + 64);
        out.push(b'{');
        let put = |out: &mut Vec<u8>, key: &str, value: &[u8]| {
            if out.len() > 1 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(value);
        };
        let mut written = Vec::with_capacity(self.members.len());
        for member in &self.members {
            let key = self.text(&member.key);
            let value = self.text(&member.value);
            match edit(key, value) {
                Edit::Keep => put(&mut out, key, value.as_bytes()),
                Edit::Drop => continue,
                Edit::Set(new) => put(&mut out, key, &new),
            }
            written.push(key);
        }
        for (key, value) in append {
            if !written.contains(key) {
                put(&mut out, key, value);
            }
        }
        out.push(b'}');
        out
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // Both ranges came from `&str`s serde_json borrowed from these bytes.
        std::str::from_utf8(&self.bytes[range.clone()]).unwrap_or_default()
    }
}

/// Top-level members in order, keys and values borrowed from the input.
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(12);
                while let Some(key) = map.next_key::<&'de str>()? {
                    out.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        de.deserialize_map(V)
    }
}

/// `text` as a JSON string.
pub fn json_string(text: &str) -> Vec<u8> {
    serde_json::to_vec(text).unwrap_or_else(|_| b"\"\"".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Option<RawBody> {
        RawBody::parse(Bytes::copy_from_slice(text.as_bytes()), Dialect::Anthropic)
    }

    #[test]
    fn members_are_kept_as_written_and_edited_in_place() {
        let body = raw(r#" {"model" : "cheap", "messages":[{"role":"user","content":"hi \"x\""}],
            "tags":["a"], "max_tokens": 5 }"#)
        .unwrap();
        assert_eq!(body.keys().collect::<Vec<_>>(), ["model", "messages", "tags", "max_tokens"]);
        assert_eq!(body.get("max_tokens"), Some("5"));
        let out = body.rebuild(
            |key, _| match key {
                "model" => Edit::Set(Cow::Owned(json_string("claude-haiku-4-5"))),
                "tags" => Edit::Drop,
                _ => Edit::Keep,
            },
            &[("stream", b"true"), ("max_tokens", b"9"), ("tags", b"[]")],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi \"x\""}],"max_tokens":5,"stream":true,"tags":[]}"#
        );
    }

    #[test]
    fn bodies_the_fast_path_does_not_take() {
        assert!(raw("[1]").is_none());
        assert!(raw(r#"{"a":1,"a":2}"#).is_none());
        assert!(raw(r#"{"mod\u0065l":"x"}"#).is_none());
        assert!(raw(r#"{"a":1"#).is_none());
        assert!(raw(r#"{"a":1} x"#).is_none());
    }
}
