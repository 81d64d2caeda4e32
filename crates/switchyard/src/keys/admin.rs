//! The management operations behind LiteLLM's `/key/*`, `/team/*`, `/user/*` and `/customer/*`
//! routes, JSON in and JSON out in LiteLLM's field names and response shapes. The HTTP routes
//! (`server/keys_api.rs`) and `switchyard keys` both call these, so both behave the same.
//!
//! Every change is written to the store in one transaction and then visible on this replica at
//! once (the snapshot is reloaded), on the others within a second (their poll).

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

// ---- helpers --------------------------------------------------------------------------------

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
fn token_for(key: &str) -> String {
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

// ---- keys -----------------------------------------------------------------------------------

const KEY_DIRECT: &[&str] = &[
    "key_alias",
    "spend",
    "models",
    "aliases",
    "config",
    "user_id",
    "team_id",
    "permissions",
    "max_parallel_requests",
    "metadata",
    "blocked",
    "tpm_limit",
    "rpm_limit",
    "max_budget",
    "budget_duration",
    "allowed_cache_controls",
    "allowed_routes",
    "model_max_budget",
    "organization_id",
];

/// Fields LiteLLM keeps in a key's `metadata`.
const KEY_IN_METADATA: &[&str] =
    &["tags", "model_rpm_limit", "model_tpm_limit", "guardrails", "enforced_params"];

/// `fields` applied to `key` (a new one or an existing one), with the budget row a
/// `soft_budget` needs.
fn apply_key(
    snap: &Snapshot,
    key: &KeyRecord,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
    changes: &mut Vec<Change>,
) -> Result<KeyRecord, AdminError> {
    let mut rec: KeyRecord = merged(key, fields, KEY_DIRECT)?;
    for name in KEY_IN_METADATA {
        match fields.get(*name) {
            None => {}
            Some(Value::Null) => {
                rec.metadata.remove(*name);
            }
            Some(v) => {
                rec.metadata.insert((*name).to_owned(), v.clone());
            }
        }
    }
    if let Some(tags) = fields.get("tags")
        && !tags.is_null()
        && !tags.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(AdminError::bad(
            "`tags` must be a list of strings.",
            "e.g. \"tags\": [\"ci\"]",
        ));
    }
    if let Some(d) = span(fields, "duration")? {
        rec.expires = d.map(|d| now + d);
    } else if let Some(v) = fields.get("expires") {
        rec.expires = match v {
            Value::Null => None,
            Value::String(s) => Some(super::record::time::parse(s).ok_or_else(|| {
                AdminError::bad(
                    format!("`expires` is not a timestamp: {s}."),
                    "Use RFC 3339, e.g. 2030-01-01T00:00:00Z, or `duration`.",
                )
            })?),
            _ => {
                return Err(AdminError::bad(
                    "`expires` must be a timestamp string.",
                    "Use RFC 3339 or `duration`.",
                ));
            }
        };
    }
    if let Some(d) = span(fields, "budget_duration")? {
        rec.budget_reset_at = d.map(|d| now + d);
    }
    if let Some(alias) = &rec.key_alias
        && fields.contains_key("key_alias")
        && snap.keys.values().any(|k| k.token != rec.token && k.key_alias.as_deref() == Some(alias))
    {
        return Err(AdminError::bad(
            format!("Unique key aliases across all keys are required: `{alias}` is taken."),
            "Pick another `key_alias`, or update the existing key instead.",
        ));
    }
    if let Some(team) = &rec.team_id
        && fields.contains_key("team_id")
        && !snap.teams.contains_key(team)
    {
        return Err(AdminError::not_found(
            format!("Team not found: team_id={team}."),
            "Create the team first (`POST /team/new`), or leave `team_id` out.",
        ));
    }
    if let Some(soft) = fields.get("soft_budget") {
        let soft = match soft {
            Value::Null => None,
            v => Some(v.as_f64().ok_or_else(|| {
                AdminError::bad("`soft_budget` must be a number.", "e.g. \"soft_budget\": 10.0")
            })?),
        };
        let mut budget = rec
            .budget_id
            .as_ref()
            .and_then(|b| snap.budgets.get(b))
            .map(|b| (**b).clone())
            .unwrap_or_else(|| BudgetRecord {
                budget_id: uuid(),
                created_at: Some(now),
                created_by: ADMIN.to_owned(),
                ..BudgetRecord::default()
            });
        budget.soft_budget = soft;
        budget.updated_at = Some(now);
        budget.updated_by = ADMIN.to_owned();
        rec.budget_id = Some(budget.budget_id.clone());
        changes.push(Change::Upsert(Table::Budgets, row(&budget)));
    }
    rec.updated_at = Some(now);
    rec.updated_by = Some(ADMIN.to_owned());
    Ok(rec)
}

/// What LiteLLM shows of a key (`/key/info`'s `info`): the row without its token, with the
/// fields LiteLLM keeps elsewhere brought up.
pub fn key_view(snap: &Snapshot, key: &KeyRecord, budget: Option<&BudgetRecord>) -> Value {
    let mut map = row(key);
    map.remove("token");
    let budget = budget.cloned().or_else(|| {
        key.budget_id.as_ref().and_then(|b| snap.budgets.get(b)).map(|b| (**b).clone())
    });
    map.insert("tags".into(), json!(key.tags()));
    for name in ["model_rpm_limit", "model_tpm_limit"] {
        map.insert(name.into(), key.metadata.get(name).cloned().unwrap_or(json!({})));
    }
    map.insert("soft_budget".into(), json!(budget.as_ref().and_then(|b| b.soft_budget)));
    map.insert("litellm_budget_table".into(), budget.map_or(Value::Null, |b| json!(b)));
    map.insert(
        "team_alias".into(),
        json!(
            key.team_id.as_ref().and_then(|t| snap.teams.get(t)).and_then(|t| t.team_alias.clone())
        ),
    );
    Value::Object(map)
}

fn soft_budget_of(changes: &[Change]) -> Option<BudgetRecord> {
    changes.iter().find_map(|c| match c {
        Change::Upsert(Table::Budgets, row) => {
            serde_json::from_value(Value::Object(row.clone())).ok()
        }
        _ => None,
    })
}

/// `POST /key/generate`.
pub async fn generate_key(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/key/generate")?;
    let snap = keys.snapshot_full();
    let now = Utc::now();
    let key = match fields.get("key") {
        None | Some(Value::Null) => new_key(),
        Some(Value::String(k)) if k.starts_with("sk-") && k.len() > 3 => k.clone(),
        Some(_) => {
            return Err(AdminError::bad(
                "Invalid key format. A virtual key must start with 'sk-'.",
                "Pass a custom `key` like \"sk-my-team-key\", or leave `key` out to get a random one.",
            ));
        }
    };
    let token = hash_key(&key);
    if snap.keys.contains_key(&token) {
        return Err(AdminError::bad(
            "This key already exists.",
            "Choose another custom `key`, or update the existing one with `POST /key/update`.",
        ));
    }
    let base = KeyRecord {
        token: token.clone(),
        key_name: Some(key_name(&key)),
        created_at: Some(now),
        created_by: Some(ADMIN.to_owned()),
        ..KeyRecord::default()
    };
    let mut changes = Vec::new();
    let rec = apply_key(&snap, &base, &fields, now, &mut changes)?;
    let budget = soft_budget_of(&changes);
    changes.push(Change::Upsert(Table::Keys, row(&rec)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    let mut out = key_view(&snap, &rec, budget.as_ref());
    if let Value::Object(map) = &mut out {
        map.insert("key".into(), json!(key));
        map.insert("token_id".into(), json!(token));
        map.insert("token".into(), json!(token));
        map.insert("duration".into(), fields.get("duration").cloned().unwrap_or(Value::Null));
    }
    Ok(out)
}

/// `GET /key/info?key=`: `{"key": <as passed>, "info": {…}}`.
pub fn key_info(keys: &Keys, key: &str) -> Answer {
    let snap = keys.snapshot_full();
    let rec = find_key(&snap, key)?;
    Ok(json!({"key": key, "info": key_view(&snap, &rec, None)}))
}

/// `POST /key/update`: the fields given replace the key's; the rest stay.
pub async fn update_key(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/key/update")?;
    let key = text(&fields, "key").ok_or_else(|| {
        AdminError::bad(
            "/key/update needs `key`.",
            "Send {\"key\": \"sk-…\", …the fields to change}.",
        )
    })?;
    let snap = keys.snapshot_full();
    let old = find_key(&snap, &key)?;
    let mut changes = Vec::new();
    let rec = apply_key(&snap, &old, &fields, Utc::now(), &mut changes)?;
    let budget = soft_budget_of(&changes);
    changes.push(Change::Upsert(Table::Keys, row(&rec)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    let mut out = key_view(&snap, &rec, budget.as_ref());
    if let Value::Object(map) = &mut out {
        map.insert("key".into(), json!(key));
        map.insert("token".into(), json!(rec.token));
    }
    Ok(out)
}

/// `POST /key/delete`: `{"keys": […]}` and/or `{"key_aliases": […]}` → `{"deleted_keys": […]}`.
pub async fn delete_keys(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/key/delete")?;
    let snap = keys.snapshot_full();
    let listed = strings(fields.get("keys"));
    let aliases = strings(fields.get("key_aliases"));
    if listed.is_empty() && aliases.is_empty() {
        return Err(AdminError::bad(
            "/key/delete needs `keys` or `key_aliases`.",
            "Send {\"keys\": [\"sk-…\"]} or {\"key_aliases\": [\"ci\"]}.",
        ));
    }
    let mut tokens = Vec::new();
    let mut missing = Vec::new();
    for k in &listed {
        match snap.keys.get(&token_for(k)) {
            Some(rec) => tokens.push(rec.token.clone()),
            None => missing.push(k.clone()),
        }
    }
    for alias in &aliases {
        let found: Vec<String> = snap
            .keys
            .values()
            .filter(|k| k.key_alias.as_deref() == Some(alias.as_str()))
            .map(|k| k.token.clone())
            .collect();
        if found.is_empty() {
            missing.push(alias.clone());
        }
        tokens.extend(found);
    }
    if !missing.is_empty() {
        // Never echo a key: name how many were not found.
        return Err(AdminError::not_found(
            format!(
                "{} of the keys or aliases to delete were not found; nothing was deleted.",
                missing.len()
            ),
            "Check them with `GET /key/list`; keys may be given as `sk-…` or as their token.",
        ));
    }
    keys.write(&[Change::Delete(Table::Keys, tokens.clone())])
        .await
        .map_err(|e| AdminError::store(&e))?;
    let mut deleted = listed;
    deleted.extend(aliases);
    Ok(json!({"deleted_keys": deleted}))
}

/// `GET /key/list`'s parameters.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    pub page: Option<usize>,
    pub size: Option<usize>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    pub return_full_object: Option<String>,
}

/// `GET /key/list` → `{"keys", "total_count", "current_page", "total_pages"}`.
pub fn list_keys(keys: &Keys, q: &ListQuery) -> Answer {
    let snap = keys.snapshot_full();
    let page = q.page.unwrap_or(1).max(1);
    let size = q.size.unwrap_or(10).clamp(1, 100);
    let mut found: Vec<&Arc<KeyRecord>> = snap
        .keys
        .values()
        .filter(|k| q.user_id.as_ref().is_none_or(|u| k.user_id.as_ref() == Some(u)))
        .filter(|k| q.team_id.as_ref().is_none_or(|t| k.team_id.as_ref() == Some(t)))
        .filter(|k| q.key_alias.as_ref().is_none_or(|a| k.key_alias.as_ref() == Some(a)))
        .collect();
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.token.cmp(&b.token)));
    let total = found.len();
    let full = q.return_full_object.as_deref().is_some_and(|v| matches!(v, "true" | "1"));
    let items: Vec<Value> = found
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|k| {
            if full {
                let mut v = key_view(&snap, k, None);
                if let Value::Object(m) = &mut v {
                    m.insert("token".into(), json!(k.token));
                }
                v
            } else {
                json!(k.token)
            }
        })
        .collect();
    Ok(json!({
        "keys": items,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
    }))
}

/// `POST /key/block` and `/key/unblock`: `{"key": …}` → the key's record.
pub async fn set_blocked(keys: &Keys, body: Value, blocked: bool) -> Answer {
    let fields = body_object(body, "/key/block")?;
    let key = text(&fields, "key").ok_or_else(|| {
        AdminError::bad("This route needs `key`.", "Send {\"key\": \"sk-…\"} (or the key's token).")
    })?;
    let snap = keys.snapshot_full();
    let mut rec = (*find_key(&snap, &key)?).clone();
    rec.blocked = Some(blocked);
    rec.updated_at = Some(Utc::now());
    rec.updated_by = Some(ADMIN.to_owned());
    keys.write(&[Change::Upsert(Table::Keys, row(&rec))])
        .await
        .map_err(|e| AdminError::store(&e))?;
    let mut out = key_view(&snap, &rec, None);
    if let Value::Object(m) = &mut out {
        m.insert("token".into(), json!(rec.token));
    }
    Ok(out)
}

/// `POST /key/{key}/regenerate`: a new key with the same settings (and any fields given); the
/// old key stops working at once.
pub async fn regenerate_key(keys: &Keys, key: &str, body: Value) -> Answer {
    let fields = body_object(body, "/key/regenerate")?;
    let snap = keys.snapshot_full();
    let old = find_key(&snap, key)?;
    let new = match fields.get("new_key") {
        Some(Value::String(k)) if k.starts_with("sk-") && k.len() > 3 => k.clone(),
        None | Some(Value::Null) => new_key(),
        Some(_) => {
            return Err(AdminError::bad(
                "`new_key` must start with 'sk-'.",
                "Leave it out for a random key.",
            ));
        }
    };
    let token = hash_key(&new);
    if snap.keys.contains_key(&token) {
        return Err(AdminError::bad("This key already exists.", "Choose another `new_key`."));
    }
    let now = Utc::now();
    let base = KeyRecord { token: token.clone(), key_name: Some(key_name(&new)), ..(*old).clone() };
    let mut changes = vec![Change::Delete(Table::Keys, vec![old.token.clone()])];
    let rec = apply_key(&snap, &base, &fields, now, &mut changes)?;
    changes.push(Change::Upsert(Table::Keys, row(&rec)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    let mut out = key_view(&snap, &rec, None);
    if let Value::Object(m) = &mut out {
        m.insert("key".into(), json!(new));
        m.insert("token_id".into(), json!(token));
        m.insert("token".into(), json!(token));
    }
    Ok(out)
}

// ---- teams ----------------------------------------------------------------------------------

const TEAM_DIRECT: &[&str] = &[
    "team_alias",
    "organization_id",
    "admins",
    "members",
    "members_with_roles",
    "metadata",
    "max_budget",
    "soft_budget",
    "spend",
    "models",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "blocked",
    "model_max_budget",
];

fn team_view(snap: &Snapshot, team: &TeamRecord) -> Value {
    let mut map = row(team);
    let keys: Vec<&str> = snap
        .keys
        .values()
        .filter(|k| k.team_id.as_deref() == Some(&team.team_id))
        .map(|k| k.token.as_str())
        .collect();
    map.insert("keys_count".into(), json!(keys.len()));
    Value::Object(map)
}

fn find_team(snap: &Snapshot, id: &str) -> Result<Arc<TeamRecord>, AdminError> {
    snap.teams.get(id).cloned().ok_or_else(|| {
        AdminError::not_found(
            format!("Team not found: team_id={id}."),
            "List teams with `GET /team/list`.",
        )
    })
}

/// `POST /team/new`.
pub async fn new_team(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/team/new")?;
    let snap = keys.snapshot_full();
    let now = Utc::now();
    let id = text(&fields, "team_id").unwrap_or_else(uuid);
    if snap.teams.contains_key(&id) {
        return Err(AdminError::bad(
            format!("Team id = {id} already exists."),
            "Pick another `team_id`, or update it with `POST /team/update`.",
        ));
    }
    let base = TeamRecord {
        team_id: id,
        members_with_roles: json!([]),
        created_at: Some(now),
        ..TeamRecord::default()
    };
    let mut team: TeamRecord = merged(&base, &fields, TEAM_DIRECT)?;
    if let Some(d) = span(&fields, "budget_duration")? {
        team.budget_reset_at = d.map(|d| now + d);
    }
    team.updated_at = Some(now);
    keys.write(&[Change::Upsert(Table::Teams, row(&team))])
        .await
        .map_err(|e| AdminError::store(&e))?;
    Ok(Value::Object(row(&team)))
}

/// `GET /team/info?team_id=` → `{"team_id", "team_info", "keys"}`.
pub fn team_info(keys: &Keys, id: &str) -> Answer {
    let snap = keys.snapshot_full();
    let team = find_team(&snap, id)?;
    let team_keys: Vec<Value> = snap
        .keys
        .values()
        .filter(|k| k.team_id.as_deref() == Some(id))
        .map(|k| {
            let mut v = key_view(&snap, k, None);
            if let Value::Object(m) = &mut v {
                m.insert("token".into(), json!(k.token));
            }
            v
        })
        .collect();
    Ok(
        json!({"team_id": id, "team_info": team_view(&snap, &team), "keys": team_keys, "team_memberships": []}),
    )
}

/// `POST /team/update`: `{"team_id", …fields}`.
pub async fn update_team(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/team/update")?;
    let id = text(&fields, "team_id").ok_or_else(|| {
        AdminError::bad(
            "/team/update needs `team_id`.",
            "Send {\"team_id\": \"…\", …the fields to change}.",
        )
    })?;
    let snap = keys.snapshot_full();
    let old = find_team(&snap, &id)?;
    let now = Utc::now();
    let mut team: TeamRecord = merged(&*old, &fields, TEAM_DIRECT)?;
    if let Some(d) = span(&fields, "budget_duration")? {
        team.budget_reset_at = d.map(|d| now + d);
    }
    team.updated_at = Some(now);
    keys.write(&[Change::Upsert(Table::Teams, row(&team))])
        .await
        .map_err(|e| AdminError::store(&e))?;
    Ok(json!({"team_id": id, "data": row(&team)}))
}

/// `POST /team/delete`: `{"team_ids": […]}`; the teams' keys are deleted with them, as in
/// LiteLLM.
pub async fn delete_teams(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/team/delete")?;
    let ids = strings(fields.get("team_ids"));
    if ids.is_empty() {
        return Err(AdminError::bad(
            "/team/delete needs `team_ids`.",
            "Send {\"team_ids\": [\"…\"]}.",
        ));
    }
    let snap = keys.snapshot_full();
    for id in &ids {
        find_team(&snap, id)?;
    }
    let tokens: Vec<String> = snap
        .keys
        .values()
        .filter(|k| k.team_id.as_ref().is_some_and(|t| ids.contains(t)))
        .map(|k| k.token.clone())
        .collect();
    keys.write(&[Change::Delete(Table::Keys, tokens), Change::Delete(Table::Teams, ids.clone())])
        .await
        .map_err(|e| AdminError::store(&e))?;
    Ok(json!({"deleted_teams": ids}))
}

/// `GET /team/list`: every team.
pub fn list_teams(keys: &Keys) -> Answer {
    let snap = keys.snapshot_full();
    let mut teams: Vec<&Arc<TeamRecord>> = snap.teams.values().collect();
    teams.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.team_id.cmp(&b.team_id)));
    Ok(Value::Array(teams.iter().map(|t| team_view(&snap, t)).collect()))
}

/// `POST /team/member_add`: `{"team_id", "member": {"user_id"|"user_email", "role"} | […]}`;
/// unknown users are created.
pub async fn team_member_add(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/team/member_add")?;
    let id = text(&fields, "team_id").ok_or_else(|| {
        AdminError::bad(
            "/team/member_add needs `team_id`.",
            "Send {\"team_id\": \"…\", \"member\": {\"user_id\": \"…\", \"role\": \"user\"}}.",
        )
    })?;
    let members: Vec<Value> = match fields.get("member") {
        Some(Value::Array(list)) => list.clone(),
        Some(m @ Value::Object(_)) => vec![m.clone()],
        _ => {
            return Err(AdminError::bad(
                "/team/member_add needs `member`: an object or a list of them.",
                "e.g. \"member\": {\"user_id\": \"ana\", \"role\": \"user\"}",
            ));
        }
    };
    let snap = keys.snapshot_full();
    let mut team = (*find_team(&snap, &id)?).clone();
    let now = Utc::now();
    let mut roles: Vec<Value> = team.members_with_roles.as_array().cloned().unwrap_or_default();
    let mut changes = Vec::new();
    for m in members {
        let user_id = m.get("user_id").and_then(Value::as_str).map(str::to_owned);
        let email = m.get("user_email").and_then(Value::as_str).map(str::to_owned);
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user").to_owned();
        if role != "user" && role != "admin" {
            return Err(AdminError::bad(
                format!("`role` must be \"user\" or \"admin\", not \"{role}\"."),
                "Leave it out for \"user\".",
            ));
        }
        let existing = user_id.as_ref().and_then(|u| snap.users.get(u)).cloned().or_else(|| {
            email.as_ref().and_then(|e| {
                snap.users.values().find(|u| u.user_email.as_ref() == Some(e)).cloned()
            })
        });
        let mut user = match existing {
            Some(u) => (*u).clone(),
            None if user_id.is_none() && email.is_none() => {
                return Err(AdminError::bad(
                    "Each member needs `user_id` or `user_email`.",
                    "e.g. {\"user_id\": \"ana\"}",
                ));
            }
            None => UserRecord {
                user_id: user_id.clone().unwrap_or_else(uuid),
                user_email: email.clone(),
                user_role: Some("internal_user".into()),
                created_at: Some(now),
                ..UserRecord::default()
            },
        };
        if !user.teams.contains(&id) {
            user.teams.push(id.clone());
        }
        user.updated_at = Some(now);
        if !team.members.contains(&user.user_id) {
            team.members.push(user.user_id.clone());
        }
        roles.retain(|r| r.get("user_id").and_then(Value::as_str) != Some(&user.user_id));
        roles.push(json!({"user_id": user.user_id, "user_email": user.user_email, "role": role}));
        if role == "admin" && !team.admins.contains(&user.user_id) {
            team.admins.push(user.user_id.clone());
        }
        changes.push(Change::Upsert(Table::Users, row(&user)));
    }
    team.members_with_roles = Value::Array(roles);
    team.updated_at = Some(now);
    changes.push(Change::Upsert(Table::Teams, row(&team)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    Ok(Value::Object(row(&team)))
}

// ---- users ----------------------------------------------------------------------------------

const USER_DIRECT: &[&str] = &[
    "user_alias",
    "team_id",
    "organization_id",
    "teams",
    "user_role",
    "max_budget",
    "spend",
    "user_email",
    "models",
    "metadata",
    "max_parallel_requests",
    "tpm_limit",
    "rpm_limit",
    "budget_duration",
    "model_max_budget",
];

/// `POST /user/new`: the user, and (unless `auto_create_key` is false) a key of theirs,
/// returned once as `key`.
pub async fn new_user(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/user/new")?;
    let snap = keys.snapshot_full();
    let now = Utc::now();
    let id = text(&fields, "user_id").unwrap_or_else(uuid);
    if snap.users.contains_key(&id) {
        return Err(AdminError::bad(
            format!("User id = {id} already exists."),
            "Pick another `user_id`.",
        ));
    }
    let base = UserRecord {
        user_id: id.clone(),
        user_role: Some("internal_user".into()),
        created_at: Some(now),
        ..UserRecord::default()
    };
    let mut user: UserRecord = merged(&base, &fields, USER_DIRECT)?;
    for team in &user.teams {
        find_team(&snap, team)?;
    }
    if let Some(d) = span(&fields, "budget_duration")? {
        user.budget_reset_at = d.map(|d| now + d);
    }
    user.updated_at = Some(now);
    keys.write(&[Change::Upsert(Table::Users, row(&user))])
        .await
        .map_err(|e| AdminError::store(&e))?;
    let mut out = row(&user);
    if fields.get("auto_create_key").and_then(Value::as_bool) != Some(false) {
        let mut key_fields = Map::new();
        key_fields.insert("user_id".into(), json!(id));
        for name in ["models", "key_alias", "duration", "max_budget", "metadata"] {
            if let Some(v) = fields.get(name) {
                key_fields.insert(name.into(), v.clone());
            }
        }
        let key = generate_key(keys, Value::Object(key_fields)).await?;
        for name in ["key", "token", "key_name", "expires", "key_alias"] {
            out.insert(name.into(), key.get(name).cloned().unwrap_or(Value::Null));
        }
    }
    Ok(Value::Object(out))
}

/// `GET /user/info?user_id=` → `{"user_id", "user_info", "keys", "teams"}`.
pub fn user_info(keys: &Keys, id: &str) -> Answer {
    let snap = keys.snapshot_full();
    let user = snap.users.get(id).cloned().ok_or_else(|| {
        AdminError::not_found(
            format!("User not found: user_id={id}."),
            "Create it with `POST /user/new`.",
        )
    })?;
    let user_keys: Vec<Value> = snap
        .keys
        .values()
        .filter(|k| k.user_id.as_deref() == Some(id))
        .map(|k| {
            let mut v = key_view(&snap, k, None);
            if let Value::Object(m) = &mut v {
                m.insert("token".into(), json!(k.token));
            }
            v
        })
        .collect();
    let teams: Vec<Value> =
        user.teams.iter().filter_map(|t| snap.teams.get(t)).map(|t| json!(**t)).collect();
    Ok(json!({"user_id": id, "user_info": *user, "keys": user_keys, "teams": teams}))
}

// ---- end users (customers) ------------------------------------------------------------------

fn customer_view(snap: &Snapshot, user: &EndUserRecord, budget: Option<&BudgetRecord>) -> Value {
    let mut map = row(user);
    let budget = budget.cloned().or_else(|| {
        user.budget_id.as_ref().and_then(|b| snap.budgets.get(b)).map(|b| (**b).clone())
    });
    map.insert("litellm_budget_table".into(), budget.map_or(Value::Null, |b| json!(b)));
    Value::Object(map)
}

/// The end user's budget row after `fields` (`max_budget`, `budget_duration`, limits).
fn customer_budget(
    snap: &Snapshot,
    user: &mut EndUserRecord,
    fields: &Map<String, Value>,
    now: DateTime<Utc>,
    changes: &mut Vec<Change>,
) -> Result<Option<BudgetRecord>, AdminError> {
    const BUDGET: &[&str] = &[
        "max_budget",
        "soft_budget",
        "tpm_limit",
        "rpm_limit",
        "max_parallel_requests",
        "budget_duration",
        "model_max_budget",
    ];
    if let Some(id) = text(fields, "budget_id") {
        if !snap.budgets.contains_key(&id) {
            return Err(AdminError::not_found(
                format!("Budget not found: budget_id={id}."),
                "Leave `budget_id` out and pass `max_budget` instead.",
            ));
        }
        user.budget_id = Some(id);
    }
    if !BUDGET.iter().any(|f| fields.contains_key(*f)) {
        return Ok(None);
    }
    let old = user
        .budget_id
        .as_ref()
        .and_then(|b| snap.budgets.get(b))
        .map(|b| (**b).clone())
        .unwrap_or_else(|| BudgetRecord {
            budget_id: uuid(),
            created_at: Some(now),
            created_by: ADMIN.to_owned(),
            ..BudgetRecord::default()
        });
    let mut budget: BudgetRecord = merged(&old, fields, BUDGET)?;
    if let Some(d) = span(fields, "budget_duration")? {
        budget.budget_reset_at = d.map(|d| now + d);
    }
    budget.updated_at = Some(now);
    budget.updated_by = ADMIN.to_owned();
    user.budget_id = Some(budget.budget_id.clone());
    changes.push(Change::Upsert(Table::Budgets, row(&budget)));
    Ok(Some(budget))
}

const CUSTOMER_DIRECT: &[&str] =
    &["alias", "spend", "allowed_model_region", "default_model", "blocked"];

fn check_region(fields: &Map<String, Value>) -> Result<(), AdminError> {
    match fields.get("allowed_model_region") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(r)) if r == "eu" || r == "us" => Ok(()),
        Some(other) => Err(AdminError::bad(
            format!("`allowed_model_region` must be \"eu\" or \"us\", not {other}."),
            "Use \"eu\" or \"us\", or leave it out.",
        )),
    }
}

/// `POST /customer/new`: `{"user_id", "alias", "blocked", "max_budget", "budget_id",
/// "allowed_model_region", "default_model"}`.
pub async fn new_customer(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/customer/new")?;
    let id = text(&fields, "user_id").ok_or_else(|| {
        AdminError::bad(
            "/customer/new needs `user_id`.",
            "Send {\"user_id\": \"customer-1\"} — the id requests send as `user`.",
        )
    })?;
    check_region(&fields)?;
    let snap = keys.snapshot_full();
    if snap.end_users.contains_key(&id) {
        return Err(AdminError::bad(
            format!("Customer already exists, passed user_id={id}."),
            "Update it with `POST /customer/update`.",
        ));
    }
    let now = Utc::now();
    let mut user: EndUserRecord = merged(
        &EndUserRecord { user_id: id, ..EndUserRecord::default() },
        &fields,
        CUSTOMER_DIRECT,
    )?;
    let mut changes = Vec::new();
    let budget = customer_budget(&snap, &mut user, &fields, now, &mut changes)?;
    changes.push(Change::Upsert(Table::EndUsers, row(&user)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    Ok(customer_view(&snap, &user, budget.as_ref()))
}

fn find_customer(snap: &Snapshot, id: &str) -> Result<Arc<EndUserRecord>, AdminError> {
    snap.end_users.get(id).cloned().ok_or_else(|| {
        AdminError::not_found(
            format!("End User Id={id} does not exist in db."),
            "Create it with `POST /customer/new`.",
        )
    })
}

/// `GET /customer/info?end_user_id=`.
pub fn customer_info(keys: &Keys, id: &str) -> Answer {
    let snap = keys.snapshot_full();
    let user = find_customer(&snap, id)?;
    Ok(customer_view(&snap, &user, None))
}

/// `POST /customer/update`: `{"user_id", …fields}`.
pub async fn update_customer(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/customer/update")?;
    let id = text(&fields, "user_id").ok_or_else(|| {
        AdminError::bad(
            "/customer/update needs `user_id`.",
            "Send {\"user_id\": \"…\", …the fields to change}.",
        )
    })?;
    check_region(&fields)?;
    let snap = keys.snapshot_full();
    let old = find_customer(&snap, &id)?;
    let mut user: EndUserRecord = merged(&*old, &fields, CUSTOMER_DIRECT)?;
    let mut changes = Vec::new();
    let budget = customer_budget(&snap, &mut user, &fields, Utc::now(), &mut changes)?;
    changes.push(Change::Upsert(Table::EndUsers, row(&user)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    Ok(customer_view(&snap, &user, budget.as_ref()))
}

/// `POST /customer/delete`: `{"user_ids": […]}`.
pub async fn delete_customers(keys: &Keys, body: Value) -> Answer {
    let fields = body_object(body, "/customer/delete")?;
    let ids = strings(fields.get("user_ids"));
    if ids.is_empty() {
        return Err(AdminError::bad(
            "/customer/delete needs `user_ids`.",
            "Send {\"user_ids\": [\"…\"]}.",
        ));
    }
    let snap = keys.snapshot_full();
    for id in &ids {
        find_customer(&snap, id)?;
    }
    keys.write(&[Change::Delete(Table::EndUsers, ids.clone())])
        .await
        .map_err(|e| AdminError::store(&e))?;
    Ok(json!({"deleted_customers": ids}))
}

impl Keys {
    /// The snapshot as an owned `Arc` (management operations hold it across awaits).
    pub fn snapshot_full(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }
}
