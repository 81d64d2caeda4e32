//! The records of the key layer, one struct per LiteLLM table, with LiteLLM's column names as
//! field names: a row read from either store (as a JSON object) deserializes into one, and a
//! record serializes into the row to write. Lenient on the way in (LiteLLM's NULL lists, SQLite's
//! 0/1 booleans, timestamps with or without a zone), exact on the way out.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

pub type Json = Map<String, Value>;

/// `"LiteLLM_VerificationToken"`: one virtual key. `token` is the sha256 hex of the key; the key
/// itself is never stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyRecord {
    pub token: String,
    pub key_name: Option<String>,
    pub key_alias: Option<String>,
    #[serde(deserialize_with = "number")]
    pub spend: f64,
    #[serde(with = "time")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable")]
    pub models: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub aliases: Json,
    #[serde(deserialize_with = "nullable")]
    pub config: Json,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub permissions: Json,
    pub max_parallel_requests: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Json,
    #[serde(deserialize_with = "flag")]
    pub blocked: Option<bool>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    #[serde(with = "time")]
    pub budget_reset_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable")]
    pub allowed_cache_controls: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub allowed_routes: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub model_spend: Json,
    #[serde(deserialize_with = "nullable")]
    pub model_max_budget: Json,
    pub budget_id: Option<String>,
    pub organization_id: Option<String>,
    #[serde(with = "time")]
    pub created_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    #[serde(with = "time")]
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

impl KeyRecord {
    pub fn is_blocked(&self) -> bool {
        self.blocked == Some(true)
    }

    /// LiteLLM keeps a key's tags in `metadata.tags`.
    pub fn tags(&self) -> Vec<String> {
        strings(self.metadata.get("tags"))
    }
}

/// `"LiteLLM_TeamTable"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamRecord {
    pub team_id: String,
    pub team_alias: Option<String>,
    pub organization_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub admins: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub members: Vec<String>,
    #[serde(deserialize_with = "nullable_value")]
    pub members_with_roles: Value,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Json,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub spend: f64,
    #[serde(deserialize_with = "nullable")]
    pub models: Vec<String>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    #[serde(with = "time")]
    pub budget_reset_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "flag_false")]
    pub blocked: bool,
    #[serde(with = "time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(with = "time")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable")]
    pub model_spend: Json,
    #[serde(deserialize_with = "nullable")]
    pub model_max_budget: Json,
}

/// `"LiteLLM_UserTable"`: the owner of keys (an internal user), not the end user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub user_id: String,
    pub user_alias: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub teams: Vec<String>,
    pub user_role: Option<String>,
    pub max_budget: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub spend: f64,
    pub user_email: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub models: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub metadata: Json,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub budget_duration: Option<String>,
    #[serde(with = "time")]
    pub budget_reset_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "nullable")]
    pub model_spend: Json,
    #[serde(deserialize_with = "nullable")]
    pub model_max_budget: Json,
    #[serde(with = "time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(with = "time")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `"LiteLLM_EndUserTable"`: a customer named by the request's `user` field. Its budget lives in
/// the budget table (`budget_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndUserRecord {
    pub user_id: String,
    pub alias: Option<String>,
    #[serde(deserialize_with = "number")]
    pub spend: f64,
    pub allowed_model_region: Option<String>,
    pub default_model: Option<String>,
    pub budget_id: Option<String>,
    #[serde(deserialize_with = "flag_false")]
    pub blocked: bool,
}

/// `"LiteLLM_BudgetTable"`: limits shared by reference (a key's `soft_budget`, an end user's
/// `max_budget`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetRecord {
    pub budget_id: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub max_parallel_requests: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    #[serde(deserialize_with = "nullable_value")]
    pub model_max_budget: Value,
    pub budget_duration: Option<String>,
    #[serde(with = "time")]
    pub budget_reset_at: Option<DateTime<Utc>>,
    #[serde(with = "time")]
    pub created_at: Option<DateTime<Utc>>,
    pub created_by: String,
    #[serde(with = "time")]
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: String,
}

/// The strings of a JSON list (anything else: none).
pub fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A NULL column (LiteLLM leaves lists and JSON NULL in old rows) as the empty value.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn nullable_value<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.unwrap_or(Value::Null))
}

/// A number column, NULL as 0.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(0.0))
}

/// A boolean as PostgreSQL (`true`) or SQLite (`1`) gives it back.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => Some(n.as_i64().unwrap_or(0) != 0),
        _ => None,
    })
}

fn flag_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(flag(d)?.unwrap_or(false))
}

/// Timestamps: written as RFC 3339 UTC with milliseconds; read with or without a zone
/// (PostgreSQL's `TIMESTAMP(3)`, as Prisma creates it, has none and holds UTC).
pub mod time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {text}"))),
        }
    }

    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Some(t.with_timezone(&Utc));
        }
        if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
            return Some(t.with_timezone(&Utc));
        }
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|t| t.and_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_litellm_row_with_nulls_and_no_zone_reads() {
        let row = json!({"token": "ab", "models": null, "aliases": null, "blocked": null,
            "expires": "2030-01-02T03:04:05.678", "spend": 1.5, "soft_budget_cooldown": false});
        let key: KeyRecord = serde_json::from_value(row).unwrap();
        assert!(key.models.is_empty() && key.aliases.is_empty() && !key.is_blocked());
        assert_eq!(key.expires.unwrap().to_rfc3339(), "2030-01-02T03:04:05.678+00:00");
        let team: TeamRecord =
            serde_json::from_value(json!({"team_id": "t", "blocked": 1})).unwrap();
        assert!(team.blocked);
    }
}
