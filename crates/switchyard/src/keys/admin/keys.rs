//! `/key/*`: generate, info, update, delete, list, block, regenerate.

use super::*;

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
            Value::String(s) => Some(crate::keys::record::time::parse(s).ok_or_else(|| {
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
    changes.push(Change::Upsert(Table::Keys, record_row(&rec, &fields)));
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
    changes.push(Change::Upsert(Table::Keys, record_row(&rec, &fields)));
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
    keys.write(&[Change::Upsert(Table::Keys, record_row(&rec, &Map::new()))])
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
    changes.push(Change::Upsert(Table::Keys, record_row(&rec, &fields)));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    let mut out = key_view(&snap, &rec, None);
    if let Value::Object(m) = &mut out {
        m.insert("key".into(), json!(new));
        m.insert("token_id".into(), json!(token));
        m.insert("token".into(), json!(token));
    }
    Ok(out)
}
