//! Hot reload: the config file and env files are watched, SIGHUP and an authenticated
//! `POST /config/reload` reload too. A valid new config is swapped in atomically (requests
//! in flight finish on the runtime they hold; deployments that did not change keep their
//! live state through `Router::reloaded`); an invalid one is rejected whole with its
//! diagnosis (CFG-07 wrapping every CFG-xx problem), logged and kept for `status`, and the
//! previous config keeps serving.
//!
//! Watching is a poll, once a second by default: each file's size, mtime and inode, and a
//! hash of its content when those moved, so a `touch` does not reload and an editor's
//! save-by-rename is seen like any write. A change is applied once the files have stayed
//! the same for a moment (debounce). Reloads never run concurrently.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{AppState, Runtime};
use crate::config::{self, Config, ConfigErrors, GeneralSettings, LoadOptions, ProcessEnv};
use crate::daemon::clock;
use crate::router;

/// How long the watched files must stay unchanged before a change is applied.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    FileChange,
    Signal,
    Api,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FileChange => "file change",
            Self::Signal => "SIGHUP",
            Self::Api => "POST /config/reload",
        }
    }
}

/// One reload's outcome, as the log, `GET /config/status`, `gateway.json` and `status`
/// show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadRecord {
    /// Unix seconds.
    pub at: u64,
    pub trigger: &'static str,
    pub ok: bool,
    pub config: PathBuf,
    /// What changed, or that nothing did and why.
    pub summary: String,
    /// When rejected: CFG-07 with every problem (`id`, `message`, `problems`, `text`).
    pub error: Option<Value>,
}

impl ReloadRecord {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A file as last seen: size, mtime and inode, and a hash of its content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Seen {
    meta: Option<(u64, Option<SystemTime>, u64)>,
    hash: Option<u64>,
}

fn meta(path: &std::path::Path) -> Option<(u64, Option<SystemTime>, u64)> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.len(), m.modified().ok(), ino))
}

fn content_hash(path: &std::path::Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

fn look(path: &std::path::Path) -> Seen {
    Seen { meta: meta(path), hash: content_hash(path) }
}

/// Reloads one gateway's config: from the same files it started with, never concurrently.
pub struct Reloader {
    opts: LoadOptions,
    /// The config file and every env file, in load order.
    files: Vec<PathBuf>,
    seen: Mutex<Vec<Seen>>,
    serial: tokio::sync::Mutex<()>,
    loaded_at: AtomicU64,
    watching: AtomicBool,
    last: watch::Sender<Option<ReloadRecord>>,
}

impl Reloader {
    /// A reloader for the gateway serving `current`, loaded with `opts`. The config path
    /// is pinned to the file actually loaded (a reload never searches again).
    pub fn new(opts: &LoadOptions, current: &Config) -> Arc<Self> {
        let config_path = std::path::absolute(&current.path).unwrap_or(current.path.clone());
        let opts = LoadOptions {
            config_path: Some(config_path.clone()),
            env_files: opts.env_files.clone(),
        };
        let mut files = vec![config_path];
        files.extend(
            config::locate::env_files(&opts.env_files, &ProcessEnv)
                .into_iter()
                .map(|(p, _)| std::path::absolute(&p).unwrap_or(p)),
        );
        let seen = files.iter().map(|p| look(p)).collect();
        Arc::new(Self {
            opts,
            files,
            seen: Mutex::new(seen),
            serial: tokio::sync::Mutex::new(()),
            loaded_at: AtomicU64::new(clock::unix_now()),
            watching: AtomicBool::new(false),
            last: watch::Sender::new(None),
        })
    }

    /// The files a change of which reloads: the config, then the env files.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The last reload, if any.
    pub fn last(&self) -> Option<ReloadRecord> {
        self.last.borrow().clone()
    }

    /// Every reload's record, as it happens.
    pub fn subscribe(&self) -> watch::Receiver<Option<ReloadRecord>> {
        self.last.subscribe()
    }

    /// Loads the config again and swaps it in if it is valid.
    pub async fn reload(&self, state: &AppState, trigger: Trigger) -> ReloadRecord {
        let _one_at_a_time = self.serial.lock().await;
        // Seen before loading: a write landing during the load is a change for next time.
        let snapshot: Vec<Seen> = self.files.iter().map(|p| look(p)).collect();
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;

        let opts = self.opts.clone();
        let previous = state.runtime();
        let built = tokio::task::spawn_blocking(move || {
            config::load(&opts, &ProcessEnv).map(|config| {
                let summary = summarize(&previous.config, &config);
                (Runtime::reloaded(config, &previous), summary)
            })
        })
        .await;
        let at = clock::unix_now();
        let config_path = self.files[0].clone();
        let record = match built {
            Ok(Ok((next, summary))) => {
                for w in &next.config.warnings {
                    tracing::warn!(key = %w.key, "{}", w.message);
                }
                state.replace(next);
                self.loaded_at.store(at, Ordering::Relaxed);
                tracing::info!(trigger = trigger.as_str(), "config reloaded: {summary}");
                ReloadRecord {
                    at,
                    trigger: trigger.as_str(),
                    ok: true,
                    config: config_path,
                    summary,
                    error: None,
                }
            }
            Ok(Err(errors)) => {
                let since = clock::rfc3339(self.loaded_at.load(Ordering::Relaxed));
                let summary = format!(
                    "rejected: {} problem{}; still serving the config loaded at {since}",
                    errors.problems.len(),
                    if errors.problems.len() == 1 { "" } else { "s" }
                );
                tracing::error!(
                    trigger = trigger.as_str(),
                    "CFG-07: the new config was rejected; the previous config keeps serving.\n{errors}"
                );
                ReloadRecord {
                    at,
                    trigger: trigger.as_str(),
                    ok: false,
                    config: config_path,
                    summary,
                    error: Some(cfg07(&errors)),
                }
            }
            Err(join) => {
                tracing::error!(%join, "config reload failed");
                ReloadRecord {
                    at,
                    trigger: trigger.as_str(),
                    ok: false,
                    config: config_path,
                    summary: format!(
                        "the reload itself failed ({join}); still serving the previous config"
                    ),
                    error: None,
                }
            }
        };
        crate::metrics::global().reload(record.ok);
        self.last.send_replace(Some(record.clone()));
        record
    }

    /// Polls the files every `interval` and reloads when their content changed.
    pub fn spawn_watcher(self: &Arc<Self>, state: Arc<AppState>, interval: Duration) {
        self.watching.store(true, Ordering::Relaxed);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let changed = me.changed();
                if changed.is_empty() {
                    continue;
                }
                me.settle().await;
                tracing::info!(files = %changed.join(", "), "config files changed; reloading");
                me.reload(&state, Trigger::FileChange).await;
            }
        });
    }

    /// The files whose content differs from what the last reload (or startup) saw. A file
    /// whose metadata moved but whose content did not is noted, not reported.
    fn changed(&self) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = Vec::new();
        for (path, was) in self.files.iter().zip(seen.iter_mut()) {
            let now_meta = meta(path);
            if now_meta == was.meta {
                continue;
            }
            let now_hash = content_hash(path);
            if now_hash == was.hash {
                was.meta = now_meta;
            } else {
                changed.push(path.display().to_string());
            }
        }
        changed
    }

    /// Waits until the files stop changing (an editor may write in several steps, or delete
    /// and recreate), for at most a couple of seconds.
    async fn settle(&self) {
        let metas = || self.files.iter().map(|p| meta(p)).collect::<Vec<_>>();
        let mut before = metas();
        for _ in 0..10 {
            tokio::time::sleep(DEBOUNCE).await;
            let after = metas();
            if after == before {
                return;
            }
            before = after;
        }
    }

    /// `GET /config/status`.
    pub fn status_json(&self, state: &AppState) -> Value {
        let runtime = state.runtime();
        json!({
            "config": runtime.config.path,
            "env_files": runtime.config.env_files,
            "watched_files": self.files,
            "watching": self.watching.load(Ordering::Relaxed),
            "loaded_at": self.loaded_at.load(Ordering::Relaxed),
            "aliases": runtime.router.aliases(),
            "last_reload": self.last().map(|r| r.to_json()),
        })
    }
}

/// CFG-07: the rejected config's problems, each as CFG-01..09 with file:line:column and key.
fn cfg07(errors: &ConfigErrors) -> Value {
    let mut j = errors.to_json();
    if let Some(map) = j.as_object_mut() {
        map.remove("ok");
    }
    j["id"] = json!("CFG-07");
    j["message"] =
        json!("the new config was rejected; the previous config keeps serving until it is fixed");
    j["text"] = json!(errors.to_string());
    j
}

/// `aliases added: x; removed: y; 3 deployments changed` — what a reload changed.
fn summarize(old: &Config, new: &Config) -> String {
    let old_aliases: Vec<&str> = old.aliases().collect();
    let new_aliases: Vec<&str> = new.aliases().collect();
    let added: Vec<&str> =
        new_aliases.iter().copied().filter(|a| !old_aliases.contains(a)).collect();
    let removed: Vec<&str> =
        old_aliases.iter().copied().filter(|a| !new_aliases.contains(a)).collect();
    let changed = new
        .deployments()
        .filter(|d| {
            old.deployments().find(|o| o.id == d.id).is_some_and(|o| !router::unchanged(o, d))
        })
        .count();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("aliases added: {}", added.join(", ")));
    }
    if !removed.is_empty() {
        parts.push(format!("aliases removed: {}", removed.join(", ")));
    }
    if changed > 0 {
        parts.push(format!("{changed} deployment{} changed", if changed == 1 { "" } else { "s" }));
    }
    let key = |c: &Config| c.general.master_key.as_ref().map(|k| k.value.expose().to_owned());
    let general = |c: &Config| GeneralSettings { master_key: None, ..c.general.clone() };
    if old.router != new.router || general(old) != general(new) || key(old) != key(new) {
        parts.push("settings changed".to_owned());
    }
    if parts.is_empty() {
        parts.push("no routing change".to_owned());
    }
    format!("{} ({} aliases)", parts.join("; "), new_aliases.len())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `POST /config/reload`: 200 with the record when the new config serves, 422 with CFG-07
/// when it was rejected (the previous one still serves).
pub async fn reload_route(State(state): State<Arc<AppState>>) -> Response {
    let Some(reloader) = state.reloader().cloned() else {
        return json_response(
            StatusCode::CONFLICT,
            &json!({"ok": false, "summary": "this gateway was not started from a config file, so there is nothing to reload"}),
        );
    };
    let record = reloader.reload(&state, Trigger::Api).await;
    let status = if record.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    json_response(status, &record.to_json())
}

/// `GET /config/status`: the config serving, the files watched, the last reload.
pub async fn status_route(State(state): State<Arc<AppState>>) -> Response {
    let body = match state.reloader() {
        Some(reloader) => reloader.status_json(&state),
        None => {
            let runtime = state.runtime();
            json!({
                "config": runtime.config.path,
                "env_files": runtime.config.env_files,
                "watching": false,
                "aliases": runtime.router.aliases(),
                "last_reload": null,
            })
        }
    };
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MapEnv;

    fn cfg(text: &str) -> Config {
        config::load_from_str(text, std::path::Path::new("c.yaml"), &MapEnv::default()).unwrap()
    }

    #[test]
    fn the_summary_names_added_and_removed_aliases() {
        let a = cfg(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: anthropic/x\n      mock_response: hi\n",
        );
        let b = cfg(
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: anthropic/x\n      mock_response: hi\n  - model_name: b\n    litellm_params:\n      model: anthropic/y\n      mock_response: hi\n",
        );
        assert_eq!(summarize(&a, &b), "aliases added: b (2 aliases)");
        assert_eq!(summarize(&b, &a), "aliases removed: b (1 aliases)");
        assert_eq!(summarize(&a, &a), "no routing change (1 aliases)");
    }

    #[test]
    fn moving_an_entry_down_the_file_is_not_a_change() {
        let text = "model_list:\n  - model_name: a\n    litellm_params:\n      model: anthropic/x\n      api_key: sk-ant-1\ngeneral_settings:\n  master_key: sk-1\n";
        let a = cfg(text);
        let b = cfg(&format!("# a comment\n\n{text}"));
        assert_ne!(a.deployments().next(), b.deployments().next(), "positions differ");
        assert!(router::unchanged(&a.groups[0].deployments[0], &b.groups[0].deployments[0]));
        assert_eq!(summarize(&a, &b), "no routing change (1 aliases)");
        let c = cfg(&text.replace("sk-ant-1", "sk-ant-2"));
        assert_eq!(summarize(&a, &c), "1 deployment changed (1 aliases)");

        // The live state (cooldowns, latency) follows the unchanged deployment, not the edit.
        let old = Runtime::new(a);
        let moved = Runtime::reloaded(b, &old);
        let edited = Runtime::reloaded(c, &old);
        let state = |r: &Runtime| r.router.targets().next().unwrap().state.clone();
        assert!(Arc::ptr_eq(&state(&old), &state(&moved)));
        assert!(!Arc::ptr_eq(&state(&old), &state(&edited)));
    }

    #[test]
    fn a_rejection_wraps_every_problem_in_cfg07() {
        let errors = config::load_from_str(
            "model_list: [unclosed\n",
            std::path::Path::new("c.yaml"),
            &MapEnv::default(),
        )
        .unwrap_err();
        let j = cfg07(&errors);
        assert_eq!(j["id"], "CFG-07");
        assert_eq!(j["problems"][0]["id"], "CFG-03");
        assert!(j["text"].as_str().unwrap().contains("c.yaml:"));
        assert!(j.get("ok").is_none());
    }

    #[test]
    fn touching_a_file_is_not_a_change_but_rewriting_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "a: 1\n").unwrap();
        let reloader = Reloader {
            opts: LoadOptions::default(),
            files: vec![path.clone()],
            seen: Mutex::new(vec![look(&path)]),
            serial: tokio::sync::Mutex::new(()),
            loaded_at: AtomicU64::new(0),
            watching: AtomicBool::new(false),
            last: watch::Sender::new(None),
        };
        assert!(reloader.changed().is_empty());
        // Same content through a new inode (an editor's save by rename).
        let tmp = dir.path().join("c.yaml.tmp");
        std::fs::write(&tmp, "a: 1\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(reloader.changed().is_empty());
        std::fs::write(&tmp, "a: 2\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(reloader.changed().len(), 1);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(reloader.changed().len(), 1, "a deleted file is a change");
    }
}
