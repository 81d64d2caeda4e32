//! The pass-through routes, for provider endpoints the gateway does not model and clients
//! that speak a provider's own API:
//!
//! - `/anthropic/{path}` relays to the Anthropic API of an Anthropic deployment, as bytes
//!   both ways (`anthropic.rs`);
//! - `/bedrock/{path}` serves InvokeModel and InvokeModelWithResponseStream through the
//!   router like any chat request (Claude Code in Bedrock mode), and relays every other path
//!   signed with a Bedrock deployment's credentials (`bedrock.rs`).
//!
//! Both are authenticated like every route (the gateway key in `x-api-key` or
//! `Authorization: Bearer`, which never goes upstream: `headers.rs`) and admitted against the
//! same rate limits and budgets. A Messages answer's usage is read while it is relayed
//! (`usage.rs`, `relay.rs`) into one ledger row with call type `pass_through_endpoint`.

mod anthropic;
mod bedrock;
mod headers;
mod relay;
mod usage;

pub use anthropic::anthropic;
pub use bedrock::bedrock;

use axum::http::Uri;

/// The path and query below `prefix` (`/anthropic/`), as the client sent them.
fn below(uri: &Uri, prefix: &str) -> String {
    let path = uri.path().strip_prefix(prefix).unwrap_or_default();
    match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    }
}
