//! The operator commands' HTTP client for a running gateway: readiness while `start`
//! waits, `/health` and `/config/status` for `status`, `POST /config/reload`. Blocking
//! calls over a small current-thread runtime, since the commands themselves are
//! synchronous. Keys are sent, never printed.

use std::time::Duration;

use serde_json::Value;

/// An answer: status and JSON body (`Value::Null` when the body was not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

pub struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client for the gateway at `base` (`http://127.0.0.1:4000`), sending `key` on the
    /// authenticated routes.
    pub fn new(base: &str, key: Option<String>) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start an async runtime: {e}"))?;
        // Never through a proxy: the gateway is local, and HTTP(S)_PROXY is for upstreams.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            // A gateway serving HTTPS on this machine often has a self-signed certificate the
            // system does not trust; on loopback that check protects nothing plain HTTP
            // would, and without it `start` would never see the gateway ready.
            .danger_accept_invalid_certs(is_loopback_https(base))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self { rt, http, base: base.trim_end_matches('/').to_owned(), key })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /health/readiness` (no key).
    pub fn readiness(&self, timeout: Duration) -> Result<Answer, String> {
        self.call(reqwest::Method::GET, "/health/readiness", false, timeout)
    }

    /// `GET path` without the key (the health probes answer anyone).
    pub fn probe(&self, path: &str, timeout: Duration) -> Result<Answer, String> {
        self.call(reqwest::Method::GET, path, false, timeout)
    }

    /// `GET path` with the key.
    pub fn get(&self, path: &str, timeout: Duration) -> Result<Answer, String> {
        self.call(reqwest::Method::GET, path, true, timeout)
    }

    /// `POST path` with the key and an empty JSON body.
    pub fn post(&self, path: &str, timeout: Duration) -> Result<Answer, String> {
        self.call(reqwest::Method::POST, path, true, timeout)
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: bool,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url).timeout(timeout);
        if auth && let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if method == reqwest::Method::POST {
            req = req.header("content-type", "application/json").body("{}");
        }
        self.rt.block_on(async move {
            let resp = req.send().await.map_err(|e| describe(&url, &e))?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(|e| describe(&url, &e))?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Answer { status, body })
        })
    }
}

fn is_loopback_https(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("https://") else { return false };
    let authority = rest.split('/').next().unwrap_or_default();
    ["127.0.0.1:", "[::1]:", "localhost:"].iter().any(|h| authority.starts_with(h))
        || ["127.0.0.1", "[::1]", "localhost"].contains(&authority)
}

fn describe(url: &str, err: &reqwest::Error) -> String {
    if err.is_timeout() {
        format!("{url} did not answer in time")
    } else if err.is_connect() {
        format!("nothing answers at {url} (connection refused)")
    } else {
        format!("{url}: {err}")
    }
}

/// The message of an error answer in OpenAI's shape, or the status alone.
pub fn error_message(answer: &Answer) -> String {
    answer.body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {}", answer.status))
}

/// The key to call the running gateway's authenticated routes with: its config's master
/// key (loaded as the gateway loads it), else SWITCHYARD_MASTER_KEY / LITELLM_MASTER_KEY
/// from the environment or its env files — which still works while the config on disk is
/// invalid and the gateway serves the previous one.
pub fn key_for(info: &super::GatewayInfo) -> Option<String> {
    use crate::config::{self, Env, LayeredEnv, LoadOptions, ProcessEnv};
    let opts =
        LoadOptions { config_path: Some(info.config.clone()), env_files: info.env_files.clone() };
    if let Ok(config) = config::load(&opts, &ProcessEnv) {
        return config.general.master_key.map(|k| k.value.expose().to_owned());
    }
    let files =
        info.env_files.iter().filter_map(|p| config::envfile::load(p, "--env-file").ok()).collect();
    let env = LayeredEnv::new(&ProcessEnv).with_files(files);
    ["SWITCHYARD_MASTER_KEY", "LITELLM_MASTER_KEY"]
        .iter()
        .find_map(|v| env.get(v).map(|e| e.value).filter(|k| !k.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_on_a_loopback_address_skips_the_certificate_check() {
        assert!(is_loopback_https("https://127.0.0.1:4000"));
        assert!(is_loopback_https("https://[::1]:4000/"));
        assert!(is_loopback_https("https://localhost"));
        assert!(!is_loopback_https("http://127.0.0.1:4000"));
        assert!(!is_loopback_https("https://127.0.0.1.example.com:4000"));
        assert!(!is_loopback_https("https://gateway.internal:4000"));
    }
}
