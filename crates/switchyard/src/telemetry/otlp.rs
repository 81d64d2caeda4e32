//! Finished spans and their OTLP protobuf encoding (`ExportTraceServiceRequest`, the body of
//! `POST /v1/traces`). Written by hand: the few messages a span needs are a page of
//! protobuf wire format, where the generated types would bring a code generator's runtime.

use std::borrow::Cow;

/// One attribute value. A string is borrowed when it is a constant (most attribute values
/// of a span are: the operation, the provider), so filling a span allocates less.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    Strings(Vec<String>),
}

impl Value {
    /// A constant string, not copied.
    pub fn fixed(v: &'static str) -> Self {
        Self::Str(Cow::Borrowed(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Str(Cow::Owned(v.to_owned()))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Str(Cow::Owned(v))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Double(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// OTLP's span kinds (the two used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server = 2,
    Client = 3,
}

/// A finished span, as exported.
#[derive(Debug, Clone)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    /// The parent came from another process (a client's `traceparent`).
    pub remote_parent: bool,
    pub name: String,
    pub kind: Kind,
    /// Unix time, nanoseconds.
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// `Some(message)`: the span ended in error.
    pub error: Option<String>,
}

/// The `ExportTraceServiceRequest` carrying `spans` from one resource (this gateway).
pub fn encode(service_name: &str, spans: &[SpanData]) -> Vec<u8> {
    let mut resource = Vec::new();
    key_value(&mut resource, 1, "service.name", &Value::from(service_name));
    key_value(&mut resource, 1, "telemetry.sdk.name", &Value::fixed("switchyard"));
    key_value(&mut resource, 1, "service.version", &Value::fixed(env!("CARGO_PKG_VERSION")));

    let mut scope = Vec::new();
    bytes_field(&mut scope, 1, b"switchyard");
    bytes_field(&mut scope, 2, env!("CARGO_PKG_VERSION").as_bytes());

    // ResourceSpans { resource = 1, scope_spans = 2 { scope = 1, spans = 2... } }: the spans
    // are encoded once, and the wrappers' lengths computed, rather than each level copied
    // into the next.
    let mut encoded = Vec::with_capacity(spans.len() * 600);
    let mut one = Vec::with_capacity(600);
    for span in spans {
        one.clear();
        encode_span(&mut one, span);
        message(&mut encoded, 2, &one);
    }
    let scope_spans = field_len(1, scope.len()) + encoded.len();
    let resource_spans = field_len(1, resource.len()) + field_len(2, scope_spans);

    let mut out = Vec::with_capacity(resource_spans + 8);
    tag(&mut out, 1, LEN);
    varint(&mut out, resource_spans as u64);
    message(&mut out, 1, &resource);
    tag(&mut out, 2, LEN);
    varint(&mut out, scope_spans as u64);
    message(&mut out, 1, &scope);
    out.extend_from_slice(&encoded);
    out
}

fn encode_span(out: &mut Vec<u8>, span: &SpanData) {
    bytes_field(out, 1, &span.trace_id);
    bytes_field(out, 2, &span.span_id);
    if let Some(parent) = &span.parent {
        bytes_field(out, 4, parent);
    }
    bytes_field(out, 5, span.name.as_bytes());
    tag(out, 6, VARINT);
    varint(out, span.kind as u64);
    tag(out, 7, FIXED64);
    out.extend_from_slice(&span.start.to_le_bytes());
    tag(out, 8, FIXED64);
    out.extend_from_slice(&span.end.to_le_bytes());
    for (key, value) in &span.attributes {
        key_value(out, 9, key, value);
    }
    // Status { message = 2, code = 3 }, written in place (its length known beforehand).
    let code = if span.error.is_some() { 2 } else { 1 }; // STATUS_CODE_ERROR, _OK
    let message_len = span.error.as_ref().map_or(0, |m| field_len(2, m.len()));
    tag(out, 15, LEN);
    varint(out, (message_len + 2) as u64);
    if let Some(message) = &span.error {
        bytes_field(out, 2, message.as_bytes());
    }
    tag(out, 3, VARINT);
    varint(out, code);
    // Trace flags (sampled) and whether the parent is remote (SpanFlags).
    let remote = if span.parent.is_some() && span.remote_parent { 0x300 } else { 0x100 };
    tag(out, 16, FIXED32);
    out.extend_from_slice(&(0x01u32 | remote).to_le_bytes());
}

/// A `KeyValue { key = 1, value = 2 (AnyValue) }`, written in place: the nested lengths are
/// computed first, so no attribute needs buffers of its own.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let any = any_len(value);
    tag(out, field, LEN);
    varint(out, (field_len(1, key.len()) + field_len(2, any)) as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    match value {
        Value::Str(s) => bytes_field(out, 1, s.as_bytes()),
        Value::Bool(b) => {
            tag(out, 2, VARINT);
            varint(out, u64::from(*b));
        }
        Value::Int(i) => {
            tag(out, 3, VARINT);
            // int64: two's complement as an unsigned varint.
            varint(out, *i as u64);
        }
        Value::Double(d) => {
            tag(out, 4, FIXED64);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Strings(list) => {
            // ArrayValue { repeated AnyValue values = 1 }, each a string_value.
            tag(out, 5, LEN);
            varint(out, strings_len(list) as u64);
            for s in list {
                tag(out, 1, LEN);
                varint(out, field_len(1, s.len()) as u64);
                bytes_field(out, 1, s.as_bytes());
            }
        }
    }
}

/// The encoded length of `value` as an `AnyValue`'s body.
fn any_len(value: &Value) -> usize {
    match value {
        Value::Str(s) => field_len(1, s.len()),
        Value::Bool(b) => 1 + varint_len(u64::from(*b)),
        Value::Int(i) => 1 + varint_len(*i as u64),
        Value::Double(_) => 1 + 8,
        Value::Strings(list) => field_len(5, strings_len(list)),
    }
}

fn strings_len(list: &[String]) -> usize {
    list.iter().map(|s| field_len(1, field_len(1, s.len()))).sum()
}

/// The encoded length of a length-delimited field `field` with a body of `len` bytes.
fn field_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3 | u64::from(LEN)) + varint_len(len as u64) + len
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn message(out: &mut Vec<u8>, field: u32, body: &[u8]) {
    bytes_field(out, field, body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_follow_the_wire_format() {
        let mut out = Vec::new();
        varint(&mut out, 1);
        varint(&mut out, 300);
        varint(&mut out, u64::MAX);
        assert_eq!(out[..3], [0x01, 0xac, 0x02]);
        assert_eq!(out.len(), 3 + 10);
        let mut t = Vec::new();
        tag(&mut t, 16, FIXED32);
        assert_eq!(t, [0x85, 0x01]);
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }

    #[test]
    fn computed_lengths_match_what_is_written() {
        let values = [
            Value::fixed("chat"),
            Value::from("x".repeat(200)),
            Value::Bool(true),
            Value::Int(-1),
            Value::Int(300),
            Value::Double(0.5),
            Value::Strings(vec!["end_turn".into(), "y".repeat(130)]),
        ];
        for value in &values {
            let mut out = Vec::new();
            key_value(&mut out, 9, "gen_ai.request.model", value);
            // Tag (1 byte), the KeyValue's length, then exactly that many bytes.
            let mut len = 0usize;
            let mut shift = 0;
            let mut i = 1;
            loop {
                let b = out[i];
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                i += 1;
                if b < 0x80 {
                    break;
                }
            }
            assert_eq!(out.len() - i, len, "{value:?}");
            assert!(len > any_len(value), "{value:?}");
        }
        let span = SpanData {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: None,
            remote_parent: false,
            name: "chat m".into(),
            kind: Kind::Server,
            start: 1,
            end: 2,
            attributes: values.iter().map(|v| ("k", v.clone())).collect(),
            error: Some("boom".into()),
        };
        let mut one = Vec::new();
        encode_span(&mut one, &span);
        assert!(one.windows(4).any(|w| w == b"boom"));
    }
}
