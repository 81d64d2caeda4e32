//! What a virtual key may do, decided from the in-memory snapshot: whether it authenticates
//! (known, not expired, not blocked, nor its team), which models it may call (its `models`,
//! else its team's; `*`, `provider/*` patterns, LiteLLM's `all-team-models`), and which model
//! a requested name becomes through its `aliases`. Each refusal is an [`ApiError`] with its
//! catalog id, in LiteLLM's wording.

use std::sync::{Arc, PoisonError};

use chrono::{DateTime, Utc};

use super::record::{BudgetRecord, KeyRecord, TeamRecord, UserRecord};
use super::{Keys, Snapshot};
use crate::classify::{ApiError, Diagnosis, ErrorKind};

/// The caller behind a virtual key, for the handler (ledger attribution now, limits later).
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: Arc<KeyRecord>,
    pub team: Option<Arc<TeamRecord>>,
    pub user: Option<Arc<UserRecord>>,
    /// The budget row the key references (`budget_id`): its `soft_budget`, and limits the
    /// key's own columns leave unset.
    pub budget: Option<Arc<BudgetRecord>>,
    /// The key's own limits as the snapshot built them from these records
    /// ([`super::limits::own_limits`]).
    pub limits: Option<Arc<crate::limits::Caller>>,
}

/// Why a presented key was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Unknown,
    Expired(DateTime<Utc>),
    Blocked,
    TeamBlocked(String),
}

/// The 64-char lowercase sha256 hex of `key`, on the stack.
fn token_of(key: &str) -> [u8; 64] {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(key.as_bytes());
    let mut out = [0u8; 64];
    for (i, byte) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    out
}

impl Keys {
    /// Whether any virtual key exists (without one, auth is the master key's alone).
    pub fn any(&self) -> bool {
        !self.snapshot().keys.is_empty()
    }

    /// Whether any customer (`/customer/new`) exists: only then is a request's end user
    /// looked up.
    pub fn has_end_users(&self) -> bool {
        !self.snapshot().end_users.is_empty()
    }

    /// KEY-09 when the request's end user is a customer an administrator blocked.
    pub fn check_end_user(&self, end_user: &str) -> Result<(), ApiError> {
        let snap = self.snapshot();
        match snap.end_users.get(end_user) {
            Some(customer) if customer.blocked => Err(ApiError::new(
                ErrorKind::PermissionDenied,
                format!("End User={end_user} is blocked. Let an admin unblock them to make requests."),
            )
            .with_param("user")
            .with_diagnosis(Diagnosis::new(
                "KEY-09",
                format!("The request's end user (`user`) is customer `{end_user}`, which an administrator blocked."),
                format!(
                    "Ask an administrator to unblock it (`POST /customer/update` with \
                     {{\"user_id\": \"{end_user}\", \"blocked\": false}}), or send another `user`."
                ),
            ))),
            _ => Ok(()),
        }
    }

    /// The identity behind a stored token (a key's sha256 hex), as [`Keys::authenticate`]
    /// decides it now: for work done later on a key's behalf (a batch's items).
    pub fn identify_token(&self, token: &str, now: DateTime<Utc>) -> Result<Identity, Refusal> {
        identify(&self.snapshot(), token, now)
    }

    /// The identity behind `key` (as presented), or why it is refused.
    pub fn authenticate(&self, key: &str, now: DateTime<Utc>) -> Result<Identity, Refusal> {
        let snap = self.snapshot();
        let tokens = &self.inner.tokens;
        let cached = tokens.read().unwrap_or_else(PoisonError::into_inner).get(key).copied();
        let token = cached.unwrap_or_else(|| token_of(key));
        let text = std::str::from_utf8(&token).unwrap_or_default();
        if cached.is_none() && snap.keys.contains_key(text) {
            let mut tokens = tokens.write().unwrap_or_else(PoisonError::into_inner);
            if tokens.len() >= super::TOKENS {
                tokens.clear();
            }
            tokens.insert(key.into(), token);
        }
        identify(&snap, text, now)
    }
}

pub(crate) fn identify(
    snap: &Snapshot,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Identity, Refusal> {
    let key = snap.keys.get(token).ok_or(Refusal::Unknown)?;
    if key.is_blocked() {
        return Err(Refusal::Blocked);
    }
    if let Some(expires) = key.expires
        && expires < now
    {
        return Err(Refusal::Expired(expires));
    }
    let team = key.team_id.as_ref().and_then(|t| snap.teams.get(t)).cloned();
    if let Some(team) = &team
        && team.blocked
    {
        return Err(Refusal::TeamBlocked(team.team_id.clone()));
    }
    let mut identity = records(snap, key);
    identity.team = team;
    identity.limits = snap.limits.get(token).cloned();
    Ok(identity)
}

/// The records behind `key` in `snap`, whatever their state (no limits attached).
pub(crate) fn records(snap: &Snapshot, key: &Arc<KeyRecord>) -> Identity {
    Identity {
        key: key.clone(),
        team: key.team_id.as_ref().and_then(|t| snap.teams.get(t)).cloned(),
        user: key.user_id.as_ref().and_then(|u| snap.users.get(u)).cloned(),
        budget: key.budget_id.as_ref().and_then(|b| snap.budgets.get(b)).cloned(),
        limits: None,
    }
}

impl Refusal {
    /// The client's error: 401, LiteLLM's message first, then the cause and the fix.
    pub fn to_error(&self) -> ApiError {
        let (message, id, cause, remedy) = match self {
            Self::Unknown => (
                "Authentication Error, Invalid proxy server token passed.".to_owned(),
                "KEY-01",
                "The key is neither the gateway's master key nor a virtual key the gateway knows \
                 (it may have been deleted or regenerated)."
                    .to_owned(),
                "Check the key you send; an administrator can list keys with `switchyard keys \
                 list` or `GET /key/list`, or create one with `switchyard keys create`."
                    .to_owned(),
            ),
            Self::Expired(at) => (
                format!(
                    "Authentication Error - Expired Key. Key Expiry time {} and current time {}",
                    at.format("%Y-%m-%d %H:%M:%S%:z"),
                    Utc::now().format("%Y-%m-%d %H:%M:%S%:z")
                ),
                "KEY-02",
                "The virtual key's `expires` time has passed.".to_owned(),
                "Ask an administrator for a new key, or to extend this one: `POST /key/update` \
                 with a new `duration`, or `POST /key/{key}/regenerate`."
                    .to_owned(),
            ),
            Self::Blocked => (
                "Authentication Error, This key has been blocked.".to_owned(),
                "KEY-03",
                "An administrator blocked this virtual key.".to_owned(),
                "Ask an administrator to unblock it (`POST /key/unblock`) or to issue a new key."
                    .to_owned(),
            ),
            Self::TeamBlocked(team) => (
                format!("Authentication Error, Team={team} is blocked."),
                "KEY-03",
                "An administrator blocked the team this virtual key belongs to.".to_owned(),
                format!(
                    "Ask an administrator to unblock team {team} (`POST /team/update` with `\"blocked\": false`)."
                ),
            ),
        };
        ApiError::new(ErrorKind::Unauthorized, message)
            .with_diagnosis(Diagnosis::new(id, cause, remedy))
    }
}

/// Whether `pattern` (a model name, `*`, or a `prefix/*` wildcard) admits `model`.
fn admits(pattern: &str, model: &str) -> bool {
    pattern == "*"
        || pattern == model
        || pattern.strip_suffix('*').is_some_and(|prefix| model.starts_with(prefix))
}

const ALL_TEAM_MODELS: &str = "all-team-models";
const ALL_PROXY_MODELS: &str = "all-proxy-models";

fn allows(list: &[String], model: &str) -> bool {
    list.is_empty() || list.iter().any(|p| p == ALL_PROXY_MODELS || admits(p, model))
}

impl Identity {
    /// The model to route for `requested`: the key's alias for it, when it has one; refused
    /// (403, KEY-04) when the key or its team may not call it.
    pub fn resolve_model(&self, requested: &str) -> Result<Option<String>, ApiError> {
        let aliased = self.key.aliases.get(requested).and_then(|v| v.as_str()).map(str::to_owned);
        let team_models: &[String] = self.team.as_ref().map_or(&[], |t| &t.models);
        // The key's own list; empty or `all-team-models` means the team's.
        let key_models: Vec<String> = self
            .key
            .models
            .iter()
            .flat_map(|m| if m == ALL_TEAM_MODELS { team_models.to_vec() } else { vec![m.clone()] })
            .collect();
        let names: Vec<&str> = std::iter::once(requested).chain(aliased.as_deref()).collect();
        // Empty (or `all-team-models` of a team without a list): no restriction of its own.
        let key_ok = names.iter().any(|n| allows(&key_models, n));
        if !key_ok {
            return Err(denied("key", &self.key.models, requested));
        }
        if !names.iter().any(|n| allows(team_models, n)) {
            return Err(denied("team", team_models, requested));
        }
        Ok(aliased)
    }
}

fn denied(who: &str, models: &[String], requested: &str) -> ApiError {
    let list = models.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ");
    ApiError::new(
        ErrorKind::PermissionDenied,
        format!(
            "{who} not allowed to access model. This {who} can only access models=[{list}]. \
             Tried to access {requested}"
        ),
    )
    .with_param("model")
    .with_diagnosis(Diagnosis::new(
        "KEY-04",
        format!("The virtual key's {who} allow-list (`models`) does not include `{requested}`."),
        format!(
            "Call one of the allowed models, or ask an administrator to add `{requested}` to \
             the {who}'s `models` (`POST /{who}/update`)."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(models: &[&str], team: Option<&[&str]>) -> Identity {
        let key = KeyRecord {
            token: "t".into(),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            aliases: serde_json::from_str(r#"{"fast": "cheap"}"#).unwrap(),
            ..KeyRecord::default()
        };
        let team = team.map(|m| {
            Arc::new(TeamRecord {
                team_id: "team-1".into(),
                models: m.iter().map(|x| (*x).to_owned()).collect(),
                ..TeamRecord::default()
            })
        });
        Identity { key: Arc::new(key), team, user: None, budget: None, limits: None }
    }

    #[test]
    fn allow_lists_patterns_and_aliases() {
        assert!(identity(&[], None).resolve_model("anything").is_ok());
        assert!(identity(&["*"], None).resolve_model("anything").is_ok());
        assert!(identity(&["anthropic/*"], None).resolve_model("anthropic/claude").is_ok());
        let err = identity(&["cheap"], None).resolve_model("frontier").unwrap_err();
        assert_eq!(err.kind.http_status().as_u16(), 403);
        assert!(err.message.starts_with("key not allowed to access model"), "{}", err.message);
        assert_eq!(err.diagnosis.unwrap().id, "KEY-04");
        assert_eq!(
            identity(&["cheap"], None).resolve_model("fast").unwrap().as_deref(),
            Some("cheap")
        );
        let team = identity(&["all-team-models"], Some(&["balanced"]));
        assert!(team.resolve_model("balanced").is_ok());
        assert!(team.resolve_model("cheap").is_err());
        assert!(identity(&["all-team-models"], Some(&[])).resolve_model("cheap").is_ok());
        let err = identity(&[], Some(&["balanced"])).resolve_model("cheap").unwrap_err();
        assert!(err.message.starts_with("team not allowed"), "{}", err.message);
    }

    #[test]
    fn the_stack_hash_is_litellms() {
        let token = token_of("sk-1234");
        assert_eq!(std::str::from_utf8(&token).unwrap(), crate::attribution::hash_key("sk-1234"));
    }
}
