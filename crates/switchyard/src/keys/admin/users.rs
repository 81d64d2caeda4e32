//! `/user/*` (key owners) and `/customer/*` (end users).

use super::teams::find_team;
use super::*;

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
    keys.write(&[Change::Upsert(Table::Users, record_row(&user, &fields))])
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
    changes.push(Change::Upsert(Table::EndUsers, record_row(&user, &fields)));
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
    changes.push(Change::Upsert(Table::EndUsers, record_row(&user, &fields)));
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
