//! Which headers cross a pass-through in each direction. Hop-by-hop headers (RFC 9110 §7.6.1,
//! and any a `Connection` header names) belong to one connection, never the next; the
//! client's credentials for the gateway never reach an upstream (the deployment's own are
//! added by its provider); a client's AWS signing headers would not match the gateway's
//! signature; `accept-encoding` is dropped so the answer arrives as sent and its usage can
//! be read while it streams.

use axum::http::HeaderMap;
use axum::http::header::{CONNECTION, HeaderName};

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Never forwarded upstream besides the hop-by-hop ones.
const REQUEST_ONLY: [&str; 8] = [
    "host",
    "content-length",
    "authorization",
    "x-api-key",
    "accept-encoding",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// The client's headers to send upstream.
pub(super) fn upstream_request(client: &HeaderMap) -> HeaderMap {
    keep(client, |name| REQUEST_ONLY.contains(&name))
}

/// The upstream's answer headers to send the client. The length goes too: the body is
/// relayed as it arrives, chunked.
pub(super) fn client_response(upstream: &HeaderMap) -> HeaderMap {
    keep(upstream, |name| name == "content-length")
}

fn keep(from: &HeaderMap, drop: impl Fn(&str) -> bool) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(from.len());
    let mut last: Option<HeaderName> = None;
    for (name, value) in from {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || drop(n) || named.iter().any(|x| x == n) {
            continue;
        }
        if last.as_ref() == Some(name) {
            out.append(name.clone(), value.clone());
        } else {
            out.insert(name.clone(), value.clone());
            last = Some(name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-gateway"));
        h.insert("x-api-key", HeaderValue::from_static("sk-gateway"));
        h.insert("connection", HeaderValue::from_static("keep-alive, x-private-hop"));
        h.insert("x-private-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        h.append("anthropic-beta", HeaderValue::from_static("a"));
        h.append("anthropic-beta", HeaderValue::from_static("b"));
        let out = upstream_request(&h);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["anthropic-version", "anthropic-beta"]);
        assert_eq!(out.get_all("anthropic-beta").iter().count(), 2);
    }
}
