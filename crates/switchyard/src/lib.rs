//! Switchyard: an LLM gateway that speaks LiteLLM's config and the OpenAI and Anthropic
//! wire formats, routes tier aliases to deployments, and names every failure with its fix.
//!
//! The binary (`main.rs`) only parses arguments and calls into [`cli`]; everything else
//! lives here so tests can drive it in-process.

pub mod attribution;
pub mod batches;
pub mod cache;
pub mod canonical;
pub mod classify;
pub mod cli;
pub mod config;
pub mod cost;
pub mod credentials;
pub mod daemon;
pub mod diagnose;
pub mod embedding;
pub mod exit;
pub mod fastpath;
/// The parsers as the fuzz targets in `fuzz/` call them; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod provider;
pub mod redis_outage;
pub mod response_store;
pub mod router;
pub mod secret;
pub mod server;
pub mod sqlite_file;
pub mod surface;
pub mod telemetry;
pub mod tokens;
