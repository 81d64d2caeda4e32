//! The management operations behind LiteLLM's `/key/*`, `/team/*`, `/user/*` and `/customer/*`
//! routes, JSON in and JSON out in LiteLLM's field names and response shapes. The HTTP routes
//! (`server/keys_api.rs`) and `switchyard keys` both call these, so both behave the same.
//!
//! Every change is written to the store in one transaction and then visible on this replica at
//! once (the snapshot is reloaded), on the others within a second (their poll).

mod keys;
mod teams;
mod users;

pub use keys::{
    ListQuery, delete_keys, generate_key, key_info, key_view, list_keys, regenerate_key,
    set_blocked, update_key,
};
pub use teams::{delete_teams, list_teams, new_team, team_info, team_member_add, update_team};
pub use users::{
    customer_info, delete_customers, new_customer, new_user, update_customer, user_info,
};

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::record::{BudgetRecord, EndUserRecord, KeyRecord, TeamRecord, UserRecord, strings};
use super::table::Table;
use super::{Change, Keys, Snapshot, duration};
use crate::attribution::hash_key;
use crate::classify::{ApiError, Diagnosis, ErrorKind};

/// Who made a change (`created_by` / `updated_by`): LiteLLM's name for the master key's admin.
pub const ADMIN: &str = "default_user_id";

/// A management request that cannot be done, with its catalog id.
#[derive(Debug, Clone)]
pub struct AdminError {
    pub kind: ErrorKind,
    pub id: &'static str,
    pub message: String,
    pub remedy: String,
}

impl AdminError {
    pub fn bad(message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidRequest,
            id: "KEY-06",
            message: message.into(),
            remedy: remedy.into(),
        }
    }

    pub fn not_found(message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            id: "KEY-07",
            message: message.into(),
            remedy: remedy.into(),
        }
    }

    fn store(e: &super::StoreError) -> Self {
        Self {
            kind: ErrorKind::Internal,
            id: "KEY-08",
            message: format!("The key store could not be written: {e}."),
            remedy: "Check that the database (`database_url`) or the state directory is reachable \
                     and writable (`/health` shows the key store's state), then retry."
                .to_owned(),
        }
    }

    pub fn to_api(&self) -> ApiError {
        ApiError::new(self.kind, self.message.clone()).with_diagnosis(Diagnosis::new(
            self.id,
            "",
            self.remedy.clone(),
        ))
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}) Fix: {}", self.message, self.id, self.remedy)
    }
}

pub type Answer = Result<Value, AdminError>;

fn body_object(body: Value, route: &str) -> Result<Map<String, Value>, AdminError> {
    match body {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(AdminError::bad(
            format!("{route} expects a JSON object."),
            "Send a JSON object body, e.g. {\"key_alias\": \"ci\"}.",
        )),
    }
}

fn text(fields: &Map<String, Value>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `rec` with the `direct` fields of `fields` written over it, read back as `T` so a wrong
/// type is a clear 400 naming the field.
fn merged<T: Serialize + DeserializeOwned>(
    rec: &T,
    fields: &Map<String, Value>,
    direct: &[&str],
) -> Result<T, AdminError> {
    let mut map = match serde_json::to_value(rec) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for name in direct {
        if let Some(v) = fields.get(*name) {
            map.insert((*name).to_owned(), v.clone());
        }
    }
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        AdminError::bad(
            format!("`{}` has the wrong type: {}.", e.path(), e.inner()),
            "Lists are JSON arrays of strings, limits are numbers, `metadata`, `aliases`, \
             `config` and `permissions` are JSON objects.",
        )
    })
}

/// A key, team, user or customer row to upsert. `spend` is left out unless the admin set it
/// (`fields`): the ledger adds each request's spend to that column in the database, and a
/// row written from this replica's snapshot must not put back an older total.
fn record_row<T: Serialize>(rec: &T, fields: &Map<String, Value>) -> Map<String, Value> {
    let mut map = row(rec);
    if !fields.contains_key("spend") {
        map.remove("spend");
    }
    map
}

fn row<T: Serialize>(rec: &T) -> Map<String, Value> {
    match serde_json::to_value(rec) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS random source is always there on supported systems; never hand out zeros.
        for b in &mut bytes {
            *b = fastrand::u8(..);
        }
    }
    bytes
}

/// A new key: `sk-` and 22 URL-safe characters (128 random bits), as LiteLLM makes them.
pub fn new_key() -> String {
    format!("sk-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>()))
}

/// A random UUID (v4), for team and budget ids.
pub fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// LiteLLM's `key_name`: `sk-...` and the key's last 4 characters.
pub fn key_name(key: &str) -> String {
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("sk-...{tail}")
}

fn span(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<Option<chrono::TimeDelta>>, AdminError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => duration::parse(s).map(|d| Some(Some(d))).map_err(|m| {
            AdminError::bad(format!("`{name}`: {m}."), "Use e.g. \"30d\" or \"12h\".")
        }),
        Some(_) => Err(AdminError::bad(
            format!("`{name}` must be a string such as \"30d\"."),
            "Use e.g. \"30d\" or \"12h\".",
        )),
    }
}

/// A key given as the plaintext `sk-…` or as its token (the sha256 hex LiteLLM lists).
/// The token (sha256 hex) of a key as an admin passes it: the key itself, or its token.
pub fn token_for(key: &str) -> String {
    let key = key.trim();
    if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        key.to_ascii_lowercase()
    } else {
        hash_key(key)
    }
}

fn find_key(snap: &Snapshot, key: &str) -> Result<Arc<KeyRecord>, AdminError> {
    snap.keys.get(&token_for(key)).cloned().ok_or_else(|| {
        AdminError::not_found(
            "Key not found in database.",
            "Pass the key as issued (`sk-…`) or its token from `GET /key/list`.",
        )
    })
}

impl Keys {
    /// The snapshot as an owned `Arc` (management operations hold it across awaits).
    pub fn snapshot_full(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }
}
