//! Which gateway a launched tool talks to, with which key, and whether it answers: `--url`,
//! else the one `switchyard start` runs (its state directory), else one serving in the
//! foreground on the default address. The key is $SWITCHYARD_MASTER_KEY, else
//! $LITELLM_MASTER_KEY, else the master key of the running gateway's config and env files
//! (as `status` and `verify` find it), else of the config the search finds.

use std::path::Path;
use std::time::Duration;

use crate::config::{self, Env, LoadOptions};
use crate::daemon::client::{self, Client};
use crate::daemon::{Lookup, StateDir};
use crate::diagnose::verify::DEFAULT_URL;

/// A gateway to try, and what was learnt on the way to it.
pub struct Found {
    pub url: String,
    pub key: Option<String>,
    /// Where the key came from, for messages (never the key).
    pub key_source: String,
    /// How the URL was chosen, for messages.
    pub url_source: String,
}

/// Why no gateway can be used; the launcher turns each into its diagnosis.
pub enum Unusable {
    /// Nothing answers at the URL.
    NotAnswering { url: String, url_source: String, why: String },
    /// It answered but refused the key.
    KeyRefused { url: String, key_source: String, message: String },
    /// It answered something else than the model list.
    Failed { url: String, message: String },
}

pub fn find(url: Option<&str>, state_dir: Option<&Path>, env: &dyn Env) -> Result<Found, String> {
    let var = |name: &str| env.get(name).map(|v| v.value).filter(|v| !v.trim().is_empty());
    let dir = StateDir::resolve(state_dir, env)?;
    let running = match dir.lookup() {
        Lookup::Running(info) => Some(info),
        _ => None,
    };
    let (url, url_source) = match (url, &running) {
        (Some(u), _) => (u.trim_end_matches('/').to_owned(), "--url".to_owned()),
        (None, Some(info)) => (
            info.connect_url(),
            format!("the gateway recorded in {} (pid {})", dir.root().display(), info.pid),
        ),
        (None, None) => (
            DEFAULT_URL.to_owned(),
            format!("the default address (no gateway is recorded in {})", dir.root().display()),
        ),
    };
    let (key, key_source) = if let Some(k) = var("SWITCHYARD_MASTER_KEY") {
        (Some(k), "$SWITCHYARD_MASTER_KEY".to_owned())
    } else if let Some(k) = var("LITELLM_MASTER_KEY") {
        (Some(k), "$LITELLM_MASTER_KEY".to_owned())
    } else if let Some(info) = &running {
        let key = client::key_for(info).filter(|k| !k.trim().is_empty());
        (key, format!("the master key of {} (and its env files)", info.config.display()))
    } else {
        match config::load(&LoadOptions::default(), env) {
            Ok(c) => (
                c.general.master_key.map(|k| k.value.expose().to_owned()),
                format!("the master key of {}", c.path.display()),
            ),
            Err(_) => (None, "no key (none in the environment or a config)".to_owned()),
        }
    };
    Ok(Found { url, key, key_source, url_source })
}

/// `GET /v1/models` with the key: the aliases it serves, or why it cannot be used.
pub fn aliases(found: &Found) -> Result<Vec<String>, Unusable> {
    let url = found.url.clone();
    let client = Client::new(&url, found.key.clone()).map_err(|why| Unusable::NotAnswering {
        url: url.clone(),
        url_source: String::new(),
        why,
    })?;
    let answer = client.get("/v1/models", Duration::from_secs(10)).map_err(|why| {
        Unusable::NotAnswering { url: url.clone(), url_source: found.url_source.clone(), why }
    })?;
    match answer.status {
        200 => Ok(answer.body["data"]
            .as_array()
            .map(|list| list.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()),
        401 | 403 => Err(Unusable::KeyRefused {
            url,
            key_source: found.key_source.clone(),
            message: client::error_message(&answer),
        }),
        _ => Err(Unusable::Failed { url, message: client::error_message(&answer) }),
    }
}
