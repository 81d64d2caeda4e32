//! `/team/*`: new, info, update, delete, list, member_add.

use super::*;

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

pub(super) fn find_team(snap: &Snapshot, id: &str) -> Result<Arc<TeamRecord>, AdminError> {
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
    keys.write(&[Change::Upsert(Table::Teams, record_row(&team, &fields))])
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
    keys.write(&[Change::Upsert(Table::Teams, record_row(&team, &fields))])
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
        changes.push(Change::Upsert(Table::Users, record_row(&user, &Map::new())));
    }
    team.members_with_roles = Value::Array(roles);
    team.updated_at = Some(now);
    changes.push(Change::Upsert(Table::Teams, record_row(&team, &Map::new())));
    keys.write(&changes).await.map_err(|e| AdminError::store(&e))?;
    Ok(Value::Object(row(&team)))
}
