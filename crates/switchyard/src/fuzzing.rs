//! The gateway's parsers as the fuzz targets in `fuzz/` call them: the same entry points the
//! server runs on real input, wrapped so a target is one synchronous call. Not an API
//! (hidden from the docs); it follows the code.
#![allow(clippy::expect_used, reason = "a fuzz harness that cannot set up must stop loudly")]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};

use crate::canonical::StreamEvent;
use crate::classify::UpstreamError;
use crate::config::{self, Config, ConfigErrors, MapEnv};
use crate::keys::Keys;
use crate::keys::store::{Change, Rows, Store, StoreError};
use crate::keys::table::{Kind, Table};
use crate::provider::{Upstreams, anthropic_fuzz, bedrock_fuzz, openai_fuzz};

/// The secret the fuzz environment's `FUZZ_SECRET` holds: it must never show in a rendered
/// config unless the config itself spells it out.
pub const ENV_SECRET: &str = "sk-fuzz-env-secret-7f3a9c";

/// Where the fuzzed config is said to live: nothing is there, so `include:` and file
/// references resolve to missing files.
const CONFIG_PATH: &str = "/nonexistent/switchyard-fuzz/config.yaml";

thread_local! {
    // One runtime per thread: building one per input would cost more than most inputs.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

/// Runs `fut` to completion on this thread's runtime.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(fut))
}

/// The environment a fuzzed config sees.
pub fn env() -> MapEnv {
    MapEnv::new([
        ("FUZZ_SECRET", ENV_SECRET),
        ("OPENAI_API_KEY", ENV_SECRET),
        ("ANTHROPIC_API_KEY", ENV_SECRET),
        ("FUZZ_NUMBER", "3"),
        ("FUZZ_FLAG", "true"),
        ("HOME", "/nonexistent"),
    ])
}

/// YAML, `os.environ/` interpolation and validation: `switchyard check` on `text`.
pub fn load_config(text: &str) -> Result<Config, ConfigErrors> {
    config::load_from_str(text, Path::new(CONFIG_PATH), &env())
}

/// A deployment of each provider, built from a config as the router builds them.
pub struct Providers {
    pub anthropic: anthropic_fuzz::Fuzz,
    pub openai: openai_fuzz::Fuzz,
    pub bedrock: bedrock_fuzz::Fuzz,
}

const PROVIDERS_YAML: &str = "\
model_list:
  - model_name: anthropic
    litellm_params:
      model: anthropic/claude-sonnet-4-6
      api_key: sk-ant-api03-fuzzfuzzfuzzfuzzfuzz
  - model_name: openai
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-fuzz-openai
  - model_name: bedrock
    litellm_params:
      model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0
      aws_access_key_id: AKIAEXAMPLE000000000
      aws_secret_access_key: secret
      aws_region_name: us-east-1
";

impl Providers {
    pub fn new() -> Self {
        let env = MapEnv::new([("HOME", "/nonexistent")]);
        let cfg = config::load_from_str(PROVIDERS_YAML, Path::new("fuzz.yaml"), &env)
            .expect("the fuzz providers' config loads");
        let upstreams = Upstreams::with_env(&cfg, &env);
        let deployment = |alias: &str| Arc::clone(&cfg.group(alias).expect("alias").deployments[0]);
        Self {
            anthropic: anthropic_fuzz::Fuzz::new(&deployment("anthropic"), &upstreams),
            openai: openai_fuzz::Fuzz::new(&deployment("openai"), &upstreams),
            bedrock: bedrock_fuzz::Fuzz::new(&deployment("bedrock"), &upstreams),
        }
    }
}

impl Default for Providers {
    fn default() -> Self {
        Self::new()
    }
}

/// Which upstream stream format a body is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// Anthropic Messages SSE.
    Anthropic { json_mode: bool },
    /// OpenAI chat completion chunks.
    OpenAiChat,
    /// OpenAI Responses API events.
    OpenAiResponses,
    /// Bedrock InvokeModelWithResponseStream event-stream frames.
    BedrockInvoke { json_mode: bool },
    /// Bedrock ConverseStream event-stream frames.
    BedrockConverse { json_mode: bool },
}

/// Every item of the answer an upstream streaming `chunks` gives, as the provider reads it.
pub fn stream(
    providers: &Providers,
    upstream: Upstream,
    chunks: Vec<Bytes>,
) -> Vec<Result<StreamEvent, UpstreamError>> {
    block_on(async {
        match upstream {
            Upstream::Anthropic { json_mode } => {
                providers.anthropic.stream(chunks, json_mode).await
            }
            Upstream::OpenAiChat => providers.openai.stream(chunks, false).await,
            Upstream::OpenAiResponses => providers.openai.stream(chunks, true).await,
            Upstream::BedrockInvoke { json_mode } => {
                providers.bedrock.stream(chunks, false, json_mode).await
            }
            Upstream::BedrockConverse { json_mode } => {
                providers.bedrock.stream(chunks, true, json_mode).await
            }
        }
    })
}

/// A key store holding its rows in memory, written and read back the way the SQLite store
/// does (each column stored as its SQLite type), so the management routes run their whole
/// path, snapshot reload included, without a file per input.
#[derive(Default)]
pub struct MemoryStore {
    rows: Mutex<HashMap<Table, Vec<Map<String, Value>>>>,
    version: AtomicU64,
}

/// A value as SQLite stores a column of `kind` and `json_object` reads it back.
fn as_sqlite(kind: Kind, value: &Value) -> Value {
    match (kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Json, v) => v.clone(),
        (Kind::Bool, v) => v.as_bool().map_or(Value::Null, |b| Value::from(i64::from(b))),
        (Kind::Int, v) => v.as_i64().map_or(Value::Null, Value::from),
        (Kind::Real, v) => v.as_f64().map_or(Value::Null, Value::from),
        (_, Value::String(s)) => Value::from(s.clone()),
        (_, v) => Value::from(v.to_string()),
    }
}

impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn load(&self) -> BoxFuture<'_, Result<Rows, StoreError>> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let out: Rows = Table::ALL
            .iter()
            .map(|t| {
                let list = rows.get(t).map_or_else(Vec::new, |r| {
                    r.iter().map(|row| Value::Object(row.clone())).collect()
                });
                (*t, list)
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn version(&self) -> BoxFuture<'_, Result<String, StoreError>> {
        let v = self.version.load(Ordering::Relaxed).to_string();
        Box::pin(async move { Ok(v) })
    }

    fn write<'a>(&'a self, changes: &'a [Change]) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        for change in changes {
            match change {
                Change::Upsert(t, row) => {
                    let stored: Map<String, Value> = t
                        .columns()
                        .iter()
                        .filter_map(|(c, kind)| {
                            row.get(*c).map(|v| ((*c).to_owned(), as_sqlite(*kind, v)))
                        })
                        .collect();
                    let id = stored.get(t.id()).cloned();
                    let table = rows.entry(*t).or_default();
                    match table.iter_mut().find(|r| id.is_some() && r.get(t.id()) == id.as_ref()) {
                        // An upsert replaces only the columns it names, as `ON CONFLICT DO
                        // UPDATE SET col = excluded.col` does.
                        Some(existing) => existing.extend(stored),
                        None => table.push(stored),
                    }
                }
                Change::Delete(t, ids) => {
                    if let Some(table) = rows.get_mut(t) {
                        table.retain(|r| {
                            !r.get(t.id())
                                .and_then(Value::as_str)
                                .is_some_and(|id| ids.iter().any(|x| x == id))
                        });
                    }
                }
            }
        }
        self.version.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { Ok(()) })
    }
}

/// An empty key set over a [`MemoryStore`], loaded.
pub fn keys() -> Keys {
    let keys = Keys::with_store(Box::new(MemoryStore::default()));
    let _ = block_on(keys.reload());
    keys
}
