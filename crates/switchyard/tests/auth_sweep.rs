//! The auth sweep: every route the gateway serves, read from the router's source and checked
//! against the table below (so a new route cannot go unclassified), called with no key, a
//! wrong key and a valid virtual key; the admin routes also through path traversal, encoded,
//! doubled-slash, trailing-slash and case variants. An admin route must refuse anything but
//! the master key with 401/403 and a catalog id, never answer 200, never fail with 500.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard::batches::{Batches, Settings as BatchSettings};
use switchyard::config::{self, MapEnv};
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::{Ledger, Settings as LedgerSettings};
use switchyard::server::{self, Handle, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASTER: &str = "sk-gw-master-sweep-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Open without a key.
    Public,
    /// Any valid key; a virtual key sees only what is its own.
    Key,
    /// The master key only: a virtual key gets 403 with this catalog id.
    Admin(&'static str),
    /// The dashboard's API: a virtual key may read its own data, never change anything.
    UiRead,
    /// The dashboard's API, master key only even to read.
    UiAdmin(&'static str),
}

use Class::{Admin, Key, Public, UiAdmin, UiRead};

/// Every route, with what a caller needs. A route added to the router without a line here
/// fails `the_table_names_every_route`.
const ROUTES: &[(&str, Class)] = &[
    ("/", Public),
    ("/health/liveliness", Public),
    ("/health/liveness", Public),
    ("/health/readiness", Public),
    // Open unless require_auth_for_metrics_endpoint.
    ("/metrics", Public),
    ("/ui", Public),
    ("/ui/", Public),
    ("/ui/assets/{*path}", Public),
    ("/ui/api/session", Public),
    ("/health", Key),
    ("/v1/models", Key),
    ("/models", Key),
    ("/v1/models/{*id}", Key),
    ("/models/{*id}", Key),
    ("/model/info", Key),
    ("/v1/model/info", Key),
    ("/v1/chat/completions", Key),
    ("/chat/completions", Key),
    ("/v1/embeddings", Key),
    ("/embeddings", Key),
    ("/engines/{model}/embeddings", Key),
    ("/openai/deployments/{model}/embeddings", Key),
    ("/v1/responses", Key),
    ("/responses", Key),
    ("/v1/responses/{id}", Key),
    ("/responses/{id}", Key),
    ("/v1/messages", Key),
    ("/v1/messages/count_tokens", Key),
    ("/anthropic/{*path}", Key),
    ("/bedrock/{*path}", Key),
    ("/v1/files", Key),
    ("/v1/files/{id}", Key),
    ("/v1/files/{id}/content", Key),
    ("/v1/batches", Key),
    ("/v1/batches/{id}", Key),
    ("/v1/batches/{id}/cancel", Key),
    ("/v1/messages/batches", Key),
    ("/v1/messages/batches/{id}", Key),
    ("/v1/messages/batches/{id}/results", Key),
    ("/v1/messages/batches/{id}/cancel", Key),
    ("/config/reload", Admin("KEY-05")),
    ("/config/status", Admin("KEY-05")),
    ("/spend/logs", Admin("KEY-05")),
    ("/spend/tags", Admin("KEY-05")),
    ("/global/spend/report", Admin("KEY-05")),
    ("/global/spend/logs", Admin("KEY-05")),
    ("/key/generate", Admin("KEY-05")),
    ("/key/info", Admin("KEY-05")),
    ("/key/update", Admin("KEY-05")),
    ("/key/delete", Admin("KEY-05")),
    ("/key/list", Admin("KEY-05")),
    ("/key/block", Admin("KEY-05")),
    ("/key/unblock", Admin("KEY-05")),
    ("/key/{key}/regenerate", Admin("KEY-05")),
    ("/key/regenerate", Admin("KEY-05")),
    ("/team/new", Admin("KEY-05")),
    ("/team/info", Admin("KEY-05")),
    ("/team/update", Admin("KEY-05")),
    ("/team/delete", Admin("KEY-05")),
    ("/team/list", Admin("KEY-05")),
    ("/team/member_add", Admin("KEY-05")),
    ("/user/new", Admin("KEY-05")),
    ("/user/info", Admin("KEY-05")),
    ("/customer/new", Admin("KEY-05")),
    ("/customer/info", Admin("KEY-05")),
    ("/customer/update", Admin("KEY-05")),
    ("/customer/delete", Admin("KEY-05")),
    ("/cache/ping", Admin("KEY-05")),
    ("/cache/stats", Admin("KEY-05")),
    ("/cache/delete", Admin("KEY-05")),
    ("/cache/flushall", Admin("KEY-05")),
    ("/ui/api/deployments", UiRead),
    ("/ui/api/deployments/{id}/probe", UiRead),
    ("/ui/api/keys", UiRead),
    ("/ui/api/keys/{id}", UiRead),
    ("/ui/api/keys/{id}/block", UiRead),
    ("/ui/api/keys/{id}/unblock", UiRead),
    ("/ui/api/teams", UiRead),
    ("/ui/api/teams/{id}", UiRead),
    ("/ui/api/teams/{id}/block", UiRead),
    ("/ui/api/teams/{id}/unblock", UiRead),
    ("/ui/api/config", UiAdmin("UI-06")),
    ("/ui/api/overview", UiRead),
    ("/ui/api/spend", UiRead),
    ("/ui/api/requests", UiRead),
    ("/ui/api/requests/{request_id}", UiRead),
];

/// A route as the router's source declares it: its path and its methods.
#[derive(Debug)]
struct Route {
    path: String,
    methods: Vec<&'static str>,
}

/// Every `.route(` in the router's sources; the dashboard's API ones under `/ui/api`.
fn declared_routes() -> Vec<Route> {
    let sources = [
        ("", include_str!("../src/server/mod.rs")),
        ("", include_str!("../src/server/ui/mod.rs")),
        ("/ui/api", include_str!("../src/server/ui/data/mod.rs")),
    ];
    let mut out = Vec::new();
    for (prefix, src) in sources {
        // In ui/mod.rs the routes before `let api`'s end are nested under /ui/api.
        let api_end = src
            .find(".nest(\"/ui/api\"")
            .map_or(0, |_| src.find("Router::new()\n        .route(\"/ui\"").unwrap());
        for (at, piece) in src.match_indices(".route(") {
            let rest = &src[at + piece.len()..];
            let rest = rest.trim_start().strip_prefix('"').unwrap();
            let path = &rest[..rest.find('"').unwrap()];
            let call_end = rest.find("\n        .").unwrap_or(rest.len());
            let call = &rest[..call_end];
            let methods = ["get(", "post(", "patch(", "delete(", "any("]
                .into_iter()
                .filter(|m| call.contains(m))
                .flat_map(|m| match m {
                    "get(" => vec!["GET"],
                    "post(" => vec!["POST"],
                    "patch(" => vec!["PATCH"],
                    "delete(" => vec!["DELETE"],
                    _ => vec!["GET", "POST"],
                })
                .collect();
            let prefix = if at < api_end { "/ui/api" } else { prefix };
            out.push(Route { path: format!("{prefix}{path}"), methods });
        }
    }
    out
}

fn class_of(path: &str) -> Class {
    ROUTES.iter().find(|(p, _)| *p == path).map(|(_, c)| *c).unwrap()
}

/// A concrete path for a route's pattern.
fn concrete(path: &str) -> String {
    path.replace("{*path}", "v1/x")
        .replace("{*id}", "m")
        .replace("{model}", "m")
        .replace("{key}", "sk-nope")
        .replace(['{', '}'], "")
}

#[test]
fn the_table_names_every_route() {
    let declared: BTreeSet<String> = declared_routes().into_iter().map(|r| r.path).collect();
    let table: BTreeSet<String> = ROUTES.iter().map(|(p, _)| (*p).to_owned()).collect();
    assert!(declared.len() > 80, "{declared:?}");
    let unclassified: Vec<_> = declared.difference(&table).collect();
    let gone: Vec<_> = table.difference(&declared).collect();
    assert!(unclassified.is_empty(), "routes with no line in ROUTES: {unclassified:?}");
    assert!(gone.is_empty(), "ROUTES names routes the router no longer has: {gone:?}");
}

struct Sweep {
    gw: Handle,
    virtual_key: String,
    _runner: switchyard::batches::runner::Handle,
    _dir: tempfile::TempDir,
}

async fn sweep_gateway() -> Sweep {
    let text = format!(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: sk-up\n      api_base: http://127.0.0.1:9\n  - model_name: other\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_key: sk-up\n      api_base: http://127.0.0.1:9\nlitellm_settings:\n  cache: true\n  cache_params:\n    type: local\ngeneral_settings:\n  master_key: {MASTER}\n"
    );
    let cfg = config::load_from_str(&text, Path::new("sweep.yaml"), &MapEnv::new::<&str, &str>([]))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let gw = server::start("127.0.0.1:0".parse().unwrap(), Runtime::new(cfg)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys =
        Keys::open(&KeySettings { database_url: None, state_dir: dir.path().to_owned() }).unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys);
    let ledger = Ledger::open(&LedgerSettings {
        database_url: None,
        state_dir: dir.path().to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger);
    let batches =
        Batches::open(&BatchSettings { database_url: None, state_dir: dir.path().to_owned() })
            .unwrap();
    let runner = server::run_batches(&gw.state, batches);
    let resp = reqwest::Client::new()
        .post(format!("{}/key/generate", gw.url()))
        .bearer_auth(MASTER)
        .json(&json!({"models": ["m"], "key_alias": "sweeper"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let virtual_key = body["key"].as_str().unwrap().to_owned();
    Sweep { gw, virtual_key, _runner: runner, _dir: dir }
}

/// One raw request (no client-side path normalisation); returns the status and the body.
async fn raw(addr: SocketAddr, method: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    // A JSON body on every change, so a refusal is never just a body-parsing error.
    let body = if method == "GET" { "" } else { "{}" };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer in 20 s"))
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// OpenAI's and Anthropic's `error.message`, or AWS's top-level `message` on `/bedrock/`.
fn in_clients_shape(json: &Value) -> bool {
    json["error"]["message"].is_string() || json["message"].is_string()
}

/// With virtual keys in use, a key that is neither the master key nor a known virtual key.
const WRONG_KEY: &str = "KEY-01";

fn assert_refused(what: &str, (status, body): &(u16, String), want: u16, id: &str) {
    assert_eq!(*status, want, "{what}: {body}");
    assert!(body.contains(&format!("\"{id}\"")) || body.contains(id), "{what}: no {id} in {body}");
    let json: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{what}: {body}"));
    assert!(in_clients_shape(&json), "{what}: not the client's error shape: {body}");
}

#[tokio::test]
async fn every_route_refuses_what_it_must() {
    let sw = sweep_gateway().await;
    let addr = sw.gw.addr;
    let vk = sw.virtual_key.as_str();
    for route in declared_routes() {
        let class = class_of(&route.path);
        let path = concrete(&route.path);
        for method in &route.methods {
            let what = |who: &str| format!("{method} {path} with {who}");
            let none = raw(addr, method, &path, None).await;
            let wrong = raw(addr, method, &path, Some("sk-wrong-0000")).await;
            let virt = raw(addr, method, &path, Some(vk)).await;
            for (who, answer) in
                [("no key", &none), ("a wrong key", &wrong), ("a virtual key", &virt)]
            {
                assert_ne!(answer.0, 500, "{}: {}", what(who), answer.1);
                assert_ne!(answer.0, 0, "{}: no answer", what(who));
            }
            match class {
                Public => {}
                Key | Admin(_) => {
                    assert_refused(&what("no key"), &none, 401, "GW-01");
                    assert_refused(&what("a wrong key"), &wrong, 401, WRONG_KEY);
                }
                UiRead | UiAdmin(_) => {
                    assert_refused(&what("no key"), &none, 401, "UI-02");
                    assert_refused(&what("a wrong key"), &wrong, 401, WRONG_KEY);
                }
            }
            match class {
                Public => {}
                Key => assert!(
                    virt.0 != 401 && virt.0 != 403 || route.path.contains("{"),
                    "{}: a virtual key was refused on a route it may use: {}",
                    what("a virtual key"),
                    virt.1
                ),
                Admin(id) => assert_refused(&what("a virtual key"), &virt, 403, id),
                UiRead if *method != "GET" => {
                    assert_refused(&what("a virtual key"), &virt, 403, "UI-04");
                }
                UiRead => assert_ne!(virt.0, 403, "{}: {}", what("a virtual key"), virt.1),
                UiAdmin(id) => assert_refused(&what("a virtual key"), &virt, 403, id),
            }
        }
    }
}

/// Ways of writing an admin path that a lax router or a proxy in front might resolve to it.
fn variants(path: &str) -> Vec<String> {
    let tail = path.trim_start_matches('/');
    let (first, rest) = tail.split_once('/').unwrap_or((tail, ""));
    let encoded_first: String = first
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { format!("%{:02x}", c as u32) } else { c.to_string() })
        .collect();
    vec![
        format!("/ui/../{tail}"),
        format!("/health/..%2f{tail}"),
        format!("/x/%2e%2e/{tail}"),
        format!("/%2e%2e/{tail}"),
        format!("/./{tail}"),
        format!("//{tail}"),
        format!("/{first}//{rest}"),
        format!("/{tail}/"),
        format!("/{tail}//"),
        format!("/{}", tail.to_uppercase()),
        format!("/{encoded_first}/{rest}"),
        format!("/{first}%2f{rest}"),
        format!("/{tail}%00"),
        format!("/{tail};x=1"),
        format!("/{tail}?x=/../../"),
        format!("/v1/{tail}"),
        format!("/anthropic/../{tail}"),
        format!("/anthropic/..%2f..%2f{tail}"),
    ]
}

#[tokio::test]
async fn traversal_variants_of_admin_routes_never_reach_them_without_the_master_key() {
    let sw = sweep_gateway().await;
    let addr = sw.gw.addr;
    let vk = sw.virtual_key.as_str();
    // Each (route, method) a virtual key is refused: the admin routes, the dashboard's
    // changes.
    let refused: Vec<(String, &str)> = declared_routes()
        .into_iter()
        .flat_map(|r| {
            let class = class_of(&r.path);
            let path = concrete(&r.path);
            r.methods
                .into_iter()
                .filter(move |m| match class {
                    Admin(_) | UiAdmin(_) => true,
                    UiRead => *m != "GET",
                    Public | Key => false,
                })
                .map(move |m| (path.clone(), m))
        })
        .collect();
    let mut tried = 0;
    for (path, method) in &refused {
        for variant in variants(path) {
            {
                for (who, key) in [
                    ("no key", None),
                    ("a wrong key", Some("sk-wrong-0000")),
                    ("a virtual key", Some(vk)),
                ] {
                    let (status, body) = raw(addr, method, &variant, key).await;
                    tried += 1;
                    let what = format!("{method} {variant} with {who}");
                    assert!(status != 0 && status != 500, "{what}: {status} {body}");
                    assert!(!(200..300).contains(&status), "{what} was served: {status} {body}");
                    // A refusal is LiteLLM's error shape, whatever the status.
                    if status == 401 || status == 403 {
                        let json: Value = serde_json::from_str(&body)
                            .unwrap_or_else(|_| panic!("{what}: {body}"));
                        assert!(in_clients_shape(&json), "{what}: {body}");
                    }
                }
            }
        }
    }
    assert!(tried > 1000, "{tried}");
    // The master key still reaches each admin route the usual way.
    let (status, body) = raw(addr, "GET", "/key/list", Some(MASTER)).await;
    assert_eq!(status, 200, "{body}");
}
