//! Reads an AWS error answer in whichever shape it arrives, because AWS services and the
//! emulators and proxies in front of them do not agree on one:
//!
//! - restJson1: header `x-amzn-ErrorType: Code:http://internal.amazon.com/coral/…/` and a
//!   JSON body `{"message": …}` (or `Message`, `errorMessage`);
//! - awsJson: `{"__type": "com.amazon.coral.service#UnrecognizedClientException", …}`;
//! - query-JSON: `{"Error": {"Code": …, "Message": …}, "RequestId": …}`;
//! - awsQuery XML: `<ErrorResponse><Error><Code>…</Code><Message>…</Message></Error>…`,
//!   with moto's `<Errors>` wrapper, and S3's bare `<Error><Code>…`;
//! - neither: an HTML page or plain text from a proxy, often with a misleading content type.
//!
//! The result is the error code without its namespace and a message without markup, so a
//! diagnosis never quotes XML or HTML to a user. A tiny hand parse of the few elements AWS
//! errors carry; anything it does not understand becomes plain text.

use http::HeaderMap;
use serde_json::Value;

/// What an AWS error answer says, whatever its wire shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsErrorBody {
    /// `UnrecognizedClientException`, `InvalidClientTokenId`, … (namespace and `:…` removed).
    pub code: Option<String>,
    /// The message, unescaped and without markup.
    pub message: Option<String>,
    /// A request id carried in the body (awsQuery `<RequestId>`, query-JSON `RequestId`).
    pub request_id: Option<String>,
}

/// The longest excerpt of an unstructured body a message quotes.
const EXCERPT: usize = 300;

/// Reads `headers` and `body` of an error answer. The code comes from `x-amzn-ErrorType`
/// first (as the AWS SDKs read it), then from the body.
pub fn read(headers: &HeaderMap, body: &[u8]) -> AwsErrorBody {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let json = trimmed.starts_with('{').then(|| serde_json::from_str::<Value>(trimmed).ok());
    let json = json.flatten();
    let mut out = match &json {
        Some(v) => from_json(v),
        None if trimmed.starts_with('<') => from_xml(trimmed),
        None => AwsErrorBody::default(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // awsQuery-compatible JSON services name the query code in `x-amzn-query-error`
    // (`InvalidClientTokenId;Sender`); the SDKs prefer it.
    let query = header("x-amzn-query-error").and_then(|v| v.split(';').next());
    if let Some(code) = query.or(header("x-amzn-errortype")).and_then(normalise_code) {
        out.code = Some(code);
    }
    // A JSON error without a message has nothing more to quote.
    if out.message.is_none() && json.is_none() {
        let plain = plain_text(trimmed);
        if !plain.is_empty() {
            out.message = Some(excerpt(&plain));
        }
    }
    out
}

/// [`read`] for an answer the AWS SDK holds (`SdkError::ServiceError(e).raw()`), for when the
/// SDK could not read its error itself (an emulator's or proxy's shape).
pub fn read_sdk_response(raw: &aws_smithy_runtime_api::http::Response) -> AwsErrorBody {
    let mut headers = HeaderMap::new();
    for (name, value) in raw.headers().iter() {
        if let (Ok(n), Ok(v)) =
            (http::HeaderName::try_from(name), http::HeaderValue::from_str(value))
        {
            headers.append(n, v);
        }
    }
    read(&headers, raw.body().bytes().unwrap_or_default())
}

/// `Code:http://internal.amazon.com/coral/…/` and `com.amazon.coral.service#Code` → `Code`.
pub fn normalise_code(raw: &str) -> Option<String> {
    let code = raw.trim().split(':').next().unwrap_or_default();
    let code = code.rsplit('#').next().unwrap_or_default().trim();
    (!code.is_empty()).then(|| code.to_owned())
}

fn from_json(v: &Value) -> AwsErrorBody {
    let text = |v: &Value, keys: &[&str]| {
        keys.iter().find_map(|k| v.get(*k)?.as_str().map(str::to_owned)).filter(|s| !s.is_empty())
    };
    // query-JSON nests the error: {"Error": {"Code", "Message"}, "RequestId"}.
    let inner = v.get("Error").or_else(|| v.get("error")).filter(|e| e.is_object());
    let scope = inner.unwrap_or(v);
    let message = text(scope, &["message", "Message", "errorMessage"])
        .or_else(|| text(v, &["message", "Message", "errorMessage"]));
    let code = text(scope, &["code", "Code", "__type", "errorCode"])
        .or_else(|| text(v, &["code", "Code", "__type"]))
        .and_then(|c| normalise_code(&c));
    AwsErrorBody {
        code,
        message: message.map(|m| excerpt(&text_of(&m))).filter(|m| !m.is_empty()),
        request_id: text(v, &["RequestId", "requestId"]),
    }
}

fn from_xml(doc: &str) -> AwsErrorBody {
    // The `<Error>` element (not `<Errors>`) holds Code and Message; fall back to the whole
    // document for shapes that put them elsewhere.
    let scope = element(doc, "Error").unwrap_or(doc);
    let code = element(scope, "Code").map(unescape).and_then(|c| normalise_code(&c));
    // CDATA is text, but a proxy may still have wrapped HTML in it.
    let message = element(scope, "Message")
        .map(|m| excerpt(&text_of(&plain_text(m))))
        .filter(|m| !m.is_empty());
    let request_id = element(doc, "RequestId")
        .or_else(|| element(doc, "RequestID"))
        .map(|r| unescape(r).trim().to_owned())
        .filter(|r| !r.is_empty());
    AwsErrorBody { code, message, request_id }
}

/// The content of the first element named `name` (ASCII case-insensitive, attributes and
/// namespace prefixes allowed), up to its closing tag.
fn element<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let lower = doc.to_ascii_lowercase();
    let name = name.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find('<') {
        let start = from + found + 1;
        from = start;
        let rest = &lower[start..];
        let tag_end = rest.find('>')?;
        let tag = &rest[..tag_end];
        let tag_name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        let local = tag_name.rsplit(':').next().unwrap_or(tag_name);
        if local != name || tag.starts_with('/') {
            continue;
        }
        if tag.ends_with('/') {
            return Some("");
        }
        let content = start + tag_end + 1;
        let close = lower[content..]
            .find(&format!("</{tag_name}>"))
            .map(|i| content + i)
            .unwrap_or(lower.len());
        return doc.get(content..close);
    }
    None
}

/// XML/HTML character references and CDATA sections as text.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['&', '<']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            out.push_str(&cdata[..end]);
            rest = cdata.get(end + 3..).unwrap_or("");
            continue;
        }
        if rest.starts_with('<') {
            out.push('<');
            rest = &rest[1..];
            continue;
        }
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text without markup: tags, declarations, comments, scripts and styles removed, character
/// references decoded, whitespace collapsed. Text with no `<` is only collapsed.
pub fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i < text.len() {
        let Some(open) = lower[i..].find('<').map(|o| i + o) else {
            out.push_str(&text[i..]);
            break;
        };
        out.push_str(&text[i..open]);
        let rest = &lower[open..];
        let skip_to = |end: &str| rest.find(end).map(|e| open + e + end.len());
        let next = if rest.starts_with("<![cdata[") {
            let end = rest.find("]]>").map_or(text.len(), |e| open + e);
            out.push_str(text.get(open + 9..end).unwrap_or(""));
            Some(end + 3)
        } else if rest.starts_with("<!--") {
            skip_to("-->")
        } else if rest.starts_with("<script") {
            skip_to("</script>")
        } else if rest.starts_with("<style") {
            skip_to("</style>")
        } else if rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c)) {
            // A tag: a space in its place keeps `<td>a</td><td>b</td>` as two words.
            out.push(' ');
            skip_to(">")
        } else {
            // A lone `<` in text.
            out.push('<');
            Some(open + 1)
        }
        .unwrap_or(text.len());
        i = next;
    }
    let decoded = if out.contains(['&', '<']) { unescape(&out) } else { out };
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON message: text, unless a proxy put markup in it.
fn text_of(message: &str) -> String {
    let markup = message.trim_start().starts_with('<') || message.contains("</");
    if markup {
        plain_text(message)
    } else {
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn excerpt(text: &str) -> String {
    if text.chars().count() <= EXCERPT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(EXCERPT).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_body(body: &str) -> AwsErrorBody {
        read(&HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn moto_awsquery_xml_with_the_errors_wrapper() {
        let r = read_body(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>",
        );
        assert_eq!(r.code.as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(
            r.message.as_deref(),
            Some("The security token included in the request is invalid.")
        );
    }

    #[test]
    fn sts_awsquery_xml_with_a_namespace_and_request_id() {
        let r = read_body(
            r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>ExpiredToken</Code>
    <Message>The security token included in the request is expired</Message>
  </Error>
  <RequestId>4b1d2f36-0000-4000-8000-000000000002</RequestId>
</ErrorResponse>"#,
        );
        assert_eq!(r.code.as_deref(), Some("ExpiredToken"));
        assert_eq!(
            r.message.as_deref(),
            Some("The security token included in the request is expired")
        );
        assert_eq!(r.request_id.as_deref(), Some("4b1d2f36-0000-4000-8000-000000000002"));
    }

    #[test]
    fn s3_style_bare_error_and_escaped_text() {
        let r = read_body(
            "<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records &amp; &lt;nothing&gt; else.</Message><AWSAccessKeyId>AKIA</AWSAccessKeyId><RequestId>R1</RequestId></Error>",
        );
        assert_eq!(r.code.as_deref(), Some("InvalidAccessKeyId"));
        assert_eq!(
            r.message.as_deref(),
            Some(
                "The AWS Access Key Id you provided does not exist in our records & <nothing> else."
            )
        );
        assert_eq!(r.request_id.as_deref(), Some("R1"));
    }

    #[test]
    fn json_shapes_and_the_header() {
        let r = read_body(
            r#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#,
        );
        assert_eq!(r.code.as_deref(), Some("UnrecognizedClientException"));
        assert_eq!(
            r.message.as_deref(),
            Some("The security token included in the request is invalid.")
        );
        let r = read_body(
            r#"{"Error":{"Code":"AccessDenied","Message":"User: x is not authorized to perform: bedrock:InvokeModel","Type":"Sender"},"RequestId":"q1"}"#,
        );
        assert_eq!(r.code.as_deref(), Some("AccessDenied"));
        assert_eq!(r.request_id.as_deref(), Some("q1"));
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            "ExpiredTokenException:http://internal.amazon.com/coral/com.amazon.coral.service/"
                .parse()
                .unwrap(),
        );
        let r = read(&h, br#"{"message":"The security token included in the request is expired"}"#);
        assert_eq!(r.code.as_deref(), Some("ExpiredTokenException"));
        // The header wins over the body, as in the SDKs.
        let r = read(&h, br#"{"__type":"Other","message":"m"}"#);
        assert_eq!(r.code.as_deref(), Some("ExpiredTokenException"));
        h.insert("x-amzn-query-error", "ExpiredToken;Sender".parse().unwrap());
        assert_eq!(read(&h, b"").code.as_deref(), Some("ExpiredToken"));
    }

    #[test]
    fn html_and_plain_text_become_plain_text() {
        let r = read_body(
            "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<style>p{}</style><h1>Internal Server Error</h1>\n<p>The server encountered an internal error.</p><!-- x -->",
        );
        assert_eq!(r.code, None);
        assert_eq!(
            r.message.as_deref(),
            Some(
                "500 Internal Server Error Internal Server Error The server encountered an internal error."
            )
        );
        let r = read_body("  Forbidden by proxy policy\n");
        assert_eq!(r.message.as_deref(), Some("Forbidden by proxy policy"));
        assert_eq!(read_body("").message, None);
        assert_eq!(read_body("{not json").message.as_deref(), Some("{not json"));
        let long = "x".repeat(500);
        assert_eq!(read_body(&long).message.unwrap().chars().count(), EXCERPT + 1);
    }

    #[test]
    fn broken_and_odd_bodies_never_panic_and_never_keep_markup() {
        for body in [
            "<",
            "<<<",
            "&",
            "&#xZZ;&#99999999;&;",
            "<Error>",
            "<Error><Code>X",
            "<Error><Message>unterminated",
            "<![CDATA[never closed",
            "<é><ü>text</ü>",
            "<Error><Message><![CDATA[<b>bold</b> & more]]></Message></Error>",
            "<Error/><Code/>",
            "{\"message\": 5}",
            "{\"Error\": \"flat\"}",
            "\u{feff}<Error><Code>InvalidClientTokenId</Code></Error>",
        ] {
            let r = read_body(body);
            let m = r.message.unwrap_or_default();
            assert!(!m.contains("</") && !m.contains("<Error"), "{body:?} → {m:?}");
        }
        let r = read_body("\u{feff}<Error><Code>InvalidClientTokenId</Code></Error>");
        assert_eq!(r.code.as_deref(), Some("InvalidClientTokenId"));
        let r = read_body("<Error><Message><![CDATA[a <b> & c]]></Message></Error>");
        assert_eq!(r.message.as_deref(), Some("a <b> & c"));
    }

    #[test]
    fn elements_are_matched_by_whole_name() {
        assert_eq!(
            element("<Errors><Error><Code>A</Code></Error></Errors>", "Error"),
            Some("<Code>A</Code>")
        );
        assert_eq!(element("<CodeX>no</CodeX><Code>yes</Code>", "Code"), Some("yes"));
        assert_eq!(element("<a:Message xmlns:a=\"u\">hi</a:Message>", "Message"), Some("hi"));
        assert_eq!(unescape("a &#65;&#x42; <![CDATA[<c>]]> &bogus; &"), "a AB <c> &bogus; &");
    }
}
