//! Finished spans and their OTLP protobuf encoding (`ExportTraceServiceRequest`, the body of
//! `POST /v1/traces`). Written by hand: the few messages a span needs are a page of
//! protobuf wire format, where the generated types would bring a code generator's runtime.

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Strings(Vec<String>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Str(v)
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
    key_value(&mut resource, 1, "service.name", &Value::Str(service_name.to_owned()));
    key_value(&mut resource, 1, "telemetry.sdk.name", &Value::from("switchyard"));
    key_value(&mut resource, 1, "service.version", &Value::from(env!("CARGO_PKG_VERSION")));

    let mut scope = Vec::new();
    bytes_field(&mut scope, 1, b"switchyard");
    bytes_field(&mut scope, 2, env!("CARGO_PKG_VERSION").as_bytes());

    let mut scope_spans = Vec::with_capacity(spans.len() * 256);
    message(&mut scope_spans, 1, &scope);
    let mut one = Vec::with_capacity(512);
    for span in spans {
        one.clear();
        encode_span(&mut one, span);
        message(&mut scope_spans, 2, &one);
    }

    let mut resource_spans = Vec::with_capacity(scope_spans.len() + resource.len() + 16);
    message(&mut resource_spans, 1, &resource);
    message(&mut resource_spans, 2, &scope_spans);

    let mut out = Vec::with_capacity(resource_spans.len() + 8);
    message(&mut out, 1, &resource_spans);
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
    let mut status = Vec::new();
    match &span.error {
        Some(message) => {
            bytes_field(&mut status, 2, message.as_bytes());
            tag(&mut status, 3, VARINT);
            varint(&mut status, 2); // STATUS_CODE_ERROR
        }
        None => {
            tag(&mut status, 3, VARINT);
            varint(&mut status, 1); // STATUS_CODE_OK
        }
    }
    message(out, 15, &status);
    // Trace flags (sampled) and whether the parent is remote (SpanFlags).
    let remote = if span.parent.is_some() && span.remote_parent { 0x300 } else { 0x100 };
    tag(out, 16, FIXED32);
    out.extend_from_slice(&(0x01u32 | remote).to_le_bytes());
}

fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let mut any = Vec::new();
    match value {
        Value::Str(s) => bytes_field(&mut any, 1, s.as_bytes()),
        Value::Bool(b) => {
            tag(&mut any, 2, VARINT);
            varint(&mut any, u64::from(*b));
        }
        Value::Int(i) => {
            tag(&mut any, 3, VARINT);
            // int64: two's complement as an unsigned varint.
            varint(&mut any, *i as u64);
        }
        Value::Double(d) => {
            tag(&mut any, 4, FIXED64);
            any.extend_from_slice(&d.to_le_bytes());
        }
        Value::Strings(list) => {
            // ArrayValue { repeated AnyValue values = 1 }, each a string_value.
            let mut array = Vec::new();
            let mut one = Vec::new();
            for s in list {
                one.clear();
                bytes_field(&mut one, 1, s.as_bytes());
                message(&mut array, 1, &one);
            }
            message(&mut any, 5, &array);
        }
    }
    let mut kv = Vec::with_capacity(key.len() + any.len() + 4);
    bytes_field(&mut kv, 1, key.as_bytes());
    message(&mut kv, 2, &any);
    message(out, field, &kv);
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
    }
}
