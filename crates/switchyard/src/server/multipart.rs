//! Just enough `multipart/form-data` for `POST /v1/files`: the parts of a body already read
//! (bounded by the body limit), each with its field name, file name and bytes.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

/// The parts of `body`, or what is wrong with it (for the client's error message).
pub fn parse(content_type: &str, body: &Bytes) -> Result<Vec<Part>, String> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!(
            "the body must be multipart/form-data (a `file` and a `purpose` field), not `{}`",
            mime.trim()
        ));
    }
    let boundary = param(params, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or("the multipart content type has no boundary")?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = find(body, delimiter.as_bytes(), 0)
        .ok_or("the body has no multipart boundary")?
        + delimiter.len();
    loop {
        if body[rest..].starts_with(b"--") {
            return Ok(parts);
        }
        // After a boundary: CRLF, headers, a blank line, the data, CRLF, the next boundary.
        let start = rest + crlf(&body[rest..]);
        let head_end =
            find(body, b"\r\n\r\n", start).ok_or("a multipart part has no end of headers")?;
        let head = std::str::from_utf8(&body[start..head_end])
            .map_err(|_| "a multipart part's headers are not text")?;
        let next_delimiter = format!("\r\n{delimiter}");
        let data_start = head_end + 4;
        let data_end = find(body, next_delimiter.as_bytes(), data_start)
            .ok_or("the multipart body ends without its closing boundary")?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else { continue };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                let (_, params) = value.split_once(';').unwrap_or((value, ""));
                name = param(params, "name");
                filename = param(params, "filename");
            }
        }
        let name = name.ok_or("a multipart part has no field name")?;
        parts.push(Part { name, filename, data: body.slice(data_start..data_end) });
        rest = data_end + next_delimiter.len();
    }
}

fn crlf(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\r\n") { 2 } else { 0 }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// A `key=value` or `key="value"` parameter of a header value.
fn param(params: &str, key: &str) -> Option<String> {
    let mut rest = params;
    while !rest.is_empty() {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        let (k, after) = rest.split_once('=')?;
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        if k.trim().eq_ignore_ascii_case(key) {
            return Some(value);
        }
        rest = tail;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_an_sdk_sends() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in \\\"1\\\".jsonl\"\r\n\
              Content-Type: application/octet-stream\r\n\r\n{\"a\":1}\r\n{\"b\":2}\r\n--XyZ--\r\n",
        );
        let parts = parse("multipart/form-data; boundary=XyZ", &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name.as_str(), &parts[0].data[..]), ("purpose", &b"batch"[..]));
        assert_eq!(parts[1].filename.as_deref(), Some("in \"1\".jsonl"));
        assert_eq!(&parts[1].data[..], b"{\"a\":1}\r\n{\"b\":2}");
    }

    #[test]
    fn says_what_is_wrong() {
        let body = Bytes::from_static(b"{}");
        assert!(parse("application/json", &body).unwrap_err().contains("multipart/form-data"));
        assert!(parse("multipart/form-data", &body).unwrap_err().contains("boundary"));
        let cut =
            Bytes::from_static(b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nabc");
        assert!(
            parse("multipart/form-data; boundary=\"b\"", &cut).unwrap_err().contains("closing")
        );
    }
}
