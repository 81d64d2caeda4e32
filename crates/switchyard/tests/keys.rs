//! Virtual keys end to end on real engines: an in-process gateway against the mock Anthropic
//! API, its keys in SQLite (the default) or in LiteLLM's tables in PostgreSQL (a fresh database
//! per test). A generated key serves chat completions and messages and its hash, alias, user and
//! team reach the ledger row; model allow-lists answer 403 and blocked, expired and unknown keys
//! 401, in each surface's error shape; management routes are the master key's alone and answer
//! in LiteLLM's shapes; a key deleted on one replica is refused on another within a second; a
//! key LiteLLM itself wrote authenticates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::path::Path;
use std::time::Duration;

use ledger_support::*;
use serde_json::{Value, json};
use switchyard::attribution::hash_key;
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::Ledger;
use switchyard::server::Handle;

/// A ledger row's key hash, key alias, `"user"` and team.
type Attributed = (String, Option<String>, Option<String>, Option<String>);

struct Gw {
    _mock: mock_upstream::MockUpstream,
    gw: Handle,
    ledger: Ledger,
    keys: Keys,
    client: reqwest::Client,
}

async fn start(dir: &Path, database_url: Option<&str>) -> Gw {
    let (mock, gw, ledger) = gateway(&settings(dir, database_url)).await;
    let keys = Keys::open(&KeySettings {
        database_url: database_url.map(switchyard::secret::Secret::new),
        state_dir: dir.to_owned(),
    })
    .unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys.clone());
    Gw { _mock: mock, gw, ledger, keys, client: reqwest::Client::new() }
}

impl Gw {
    /// A management call with `key`; returns (status, body).
    async fn admin_as(&self, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.gw.url());
        let req =
            if method == "GET" { self.client.get(url) } else { self.client.post(url).json(&body) };
        let resp = req.bearer_auth(key).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.admin_as(MASTER, method, path, body).await
    }

    async fn generate(&self, body: Value) -> String {
        let (status, out) = self.admin("POST", "/key/generate", body).await;
        assert_eq!(status, 200, "{out}");
        out["key"].as_str().unwrap().to_owned()
    }

    /// A chat completion (OpenAI surface, bearer) with `key`.
    async fn chat(&self, key: &str, model: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/v1/chat/completions", self.gw.url()))
            .bearer_auth(key)
            .json(&chat(model, false))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    /// A message (Anthropic surface, x-api-key) with `key`.
    async fn message(&self, key: &str, model: &str, id: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/v1/messages", self.gw.url()))
            .header("x-api-key", key)
            .header("x-request-id", id)
            .json(&messages(model, false))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }
}

fn openai_error(body: &Value, status_type: &str, id: &str) -> String {
    assert_eq!(body["error"]["type"], status_type, "{body}");
    if status_type == "auth_error" {
        assert_eq!(body["error"]["code"], "401", "LiteLLM's code for a refused key: {body}");
    }
    assert_eq!(body["error"]["diagnosis"]["id"], id, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

fn anthropic_error(body: &Value, status_type: &str) -> String {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], status_type, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_key_serves_both_surfaces_and_its_identity_reaches_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), None).await;
    let (status, team) = g
        .admin("POST", "/team/new", json!({"team_alias": "platform", "models": ["good", "flaky"]}))
        .await;
    assert_eq!(status, 200, "{team}");
    let team_id = team["team_id"].as_str().unwrap().to_owned();
    let key = g
        .generate(json!({"key_alias": "ci", "user_id": "ana", "team_id": team_id,
                         "models": ["good"], "max_budget": 5.0, "rpm_limit": 10,
                         "tags": ["from-key"]}))
        .await;
    assert!(key.starts_with("sk-"));

    let (status, body) = g.chat(&key, "good").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = g.message(&key, "good", "k-msg").await;
    assert_eq!(status, 200, "{body}");

    g.ledger.flush().await;
    let pool = sqlite_pool(dir.path()).await;
    let two = eventually(Duration::from_secs(10), || async {
        g.ledger.flush().await;
        let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "LiteLLM_SpendLogs""#)
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        n == 2
    })
    .await;
    assert!(two);
    let rows: Vec<Attributed> =
        sqlx::query_as(r#"SELECT api_key, key_alias, "user", team_id FROM "LiteLLM_SpendLogs""#)
            .fetch_all(&pool)
            .await
            .unwrap();
    for row in rows {
        assert_eq!(
            row,
            (hash_key(&key), Some("ci".into()), Some("ana".into()), Some(team_id.clone()))
        );
    }
    // The key's tags join the request's.
    let tags: Vec<String> = sqlx::query_scalar(r#"SELECT request_tags FROM "LiteLLM_SpendLogs""#)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(tags.iter().all(|t| t.contains("from-key")), "{tags:?}");
    // The key is stored only as its hash.
    let keys_db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("keys.sqlite3").display()
    ))
    .await
    .unwrap();
    let (token, name, models): (String, String, String) =
        sqlx::query_as(r#"SELECT token, key_name, models FROM "LiteLLM_VerificationToken""#)
            .fetch_one(&keys_db)
            .await
            .unwrap();
    assert_eq!(token, hash_key(&key));
    assert_eq!(name, format!("sk-...{}", &key[key.len() - 4..]));
    assert_eq!(models, r#"["good"]"#);
    let dump = std::fs::read(dir.path().join("keys.sqlite3")).unwrap();
    assert!(!String::from_utf8_lossy(&dump).contains(&key));
    g.gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_outside_the_allow_list_are_403_in_both_shapes_and_aliases_rename() {
    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), None).await;
    let key = g.generate(json!({"models": ["good"], "aliases": {"fast": "good"}})).await;

    let (status, body) = g.chat(&key, "bad").await;
    assert_eq!(status, 403);
    let msg = openai_error(&body, "permission_error", "KEY-04");
    assert!(msg.starts_with("key not allowed to access model. This key can only access models=['good']. Tried to access bad"), "{msg}");
    let (status, body) = g.message(&key, "bad", "k-403").await;
    assert_eq!(status, 403);
    assert!(anthropic_error(&body, "permission_error").starts_with("key not allowed"));

    // An alias of the key maps to an allowed model and is served by it.
    let resp = g
        .client
        .post(format!("{}/v1/chat/completions", g.gw.url()))
        .bearer_auth(&key)
        .json(&chat("fast", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-litellm-model-group"], "good");

    // The model list shows a key what it may call.
    let models: Value = g
        .client
        .get(format!("{}/v1/models", g.gw.url()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["good"]);

    // Wildcards: `*` admits anything the gateway serves.
    let any = g.generate(json!({"models": ["*"]})).await;
    assert_eq!(g.chat(&any, "flaky").await.0, 200);
    g.gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_expired_and_unknown_keys_are_401_and_the_master_key_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), None).await;
    let key = g.generate(json!({"key_alias": "to-block"})).await;
    assert_eq!(g.chat(&key, "good").await.0, 200);

    let (status, out) = g.admin("POST", "/key/block", json!({"key": key})).await;
    assert_eq!((status, &out["blocked"]), (200, &json!(true)), "{out}");
    let (status, body) = g.chat(&key, "good").await;
    assert_eq!(status, 401);
    assert!(openai_error(&body, "auth_error", "KEY-03").contains("blocked"));
    let (status, body) = g.message(&key, "good", "k-blocked").await;
    assert_eq!(status, 401);
    assert!(anthropic_error(&body, "authentication_error").contains("blocked"));
    let (status, _) = g.admin("POST", "/key/unblock", json!({"key": key})).await;
    assert_eq!(status, 200);
    assert_eq!(g.chat(&key, "good").await.0, 200);

    let expired = g.generate(json!({"expires": "2020-01-01T00:00:00Z"})).await;
    let (status, body) = g.chat(&expired, "good").await;
    assert_eq!(status, 401);
    let msg = openai_error(&body, "auth_error", "KEY-02");
    assert!(
        msg.starts_with("Authentication Error - Expired Key. Key Expiry time 2020-01-01"),
        "{msg}"
    );

    let (status, body) = g.message(&expired, "good", "k-expired").await;
    assert_eq!(status, 401);
    assert!(anthropic_error(&body, "authentication_error").contains("Expired Key"));
    let (status, body) = g.message("sk-never-issued-0000", "good", "k-unknown").await;
    assert_eq!(status, 401);
    assert!(anthropic_error(&body, "authentication_error").contains("Invalid proxy server token"));

    let (status, body) = g.chat("sk-never-issued-0000", "good").await;
    assert_eq!(status, 401);
    let msg = openai_error(&body, "auth_error", "KEY-01");
    assert!(
        msg.contains("Invalid proxy server token passed") && !msg.contains("sk-never"),
        "{msg}"
    );

    assert_eq!(g.chat(MASTER, "good").await.0, 200);
    g.gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_routes_are_the_master_keys_and_answer_in_litellms_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), None).await;
    let key = g
        .generate(json!({"key_alias": "svc", "duration": "30d", "tags": ["ci"], "soft_budget": 2.5,
                         "model_rpm_limit": {"good": 3}, "metadata": {"owner": "ops"}}))
        .await;

    // A virtual key cannot manage.
    let (status, body) = g.admin_as(&key, "POST", "/key/generate", json!({})).await;
    assert_eq!(status, 403);
    assert!(openai_error(&body, "permission_error", "KEY-05").starts_with("Only proxy admin"));

    // /key/info: {"key", "info"} without the token, LiteLLM's fields brought up.
    let (status, info) = g.admin("GET", &format!("/key/info?key={key}"), Value::Null).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["key"], key.as_str());
    let i = &info["info"];
    assert!(i.get("token").is_none());
    assert_eq!(i["key_alias"], "svc");
    assert_eq!(i["tags"], json!(["ci"]));
    assert_eq!(i["soft_budget"], 2.5);
    assert_eq!(i["model_rpm_limit"], json!({"good": 3}));
    assert_eq!(i["metadata"]["owner"], "ops");
    assert_eq!(i["spend"], 0.0);
    assert!(i["expires"].as_str().unwrap().ends_with('Z'));

    // /key/update changes what it is given and keeps the rest.
    let (status, out) =
        g.admin("POST", "/key/update", json!({"key": key, "models": ["good"]})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["models"], json!(["good"]));
    assert_eq!(out["key_alias"], "svc");
    assert_eq!(g.chat(&key, "bad").await.0, 403);

    // /key/list: hashes by default, paged.
    g.generate(json!({"key_alias": "other"})).await;
    let (_, list) = g.admin("GET", "/key/list?page=1&size=1", Value::Null).await;
    assert_eq!((list["total_count"].as_u64(), list["total_pages"].as_u64()), (Some(2), Some(2)));
    assert_eq!(list["current_page"], 1);
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    let (_, list) =
        g.admin("GET", "/key/list?key_alias=svc&return_full_object=true", Value::Null).await;
    assert_eq!(list["keys"][0]["token"], hash_key(&key).as_str());

    // Regenerate (body form) on a throwaway key, then the path form on ours.
    let spare = g.generate(json!({"key_alias": "spare"})).await;
    let (status, out) = g.admin("POST", "/key/regenerate", json!({"key": spare})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(g.chat(&spare, "good").await.0, 401);
    assert_eq!(g.chat(out["key"].as_str().unwrap(), "good").await.0, 200);
    // Regenerate: a new key with the same settings; the old one stops at once.
    let (status, regen) = g.admin("POST", &format!("/key/{key}/regenerate"), Value::Null).await;
    assert_eq!(status, 200, "{regen}");
    let new = regen["key"].as_str().unwrap().to_owned();
    assert_ne!(new, key);
    assert_eq!(regen["key_alias"], "svc");
    assert_eq!(g.chat(&key, "good").await.0, 401);
    assert_eq!(g.chat(&new, "good").await.0, 200);

    // Delete by alias.
    let (status, out) = g.admin("POST", "/key/delete", json!({"key_aliases": ["svc"]})).await;
    assert_eq!((status, &out["deleted_keys"]), (200, &json!(["svc"])));
    assert_eq!(g.chat(&new, "good").await.0, 401);
    let (status, body) = g.admin("GET", &format!("/key/info?key={new}"), Value::Null).await;
    assert_eq!(status, 404);
    openai_error(&body, "not_found_error", "KEY-07");

    // Validation errors name the field.
    let (status, body) = g.admin("POST", "/key/generate", json!({"models": "good"})).await;
    assert_eq!(status, 400);
    assert!(openai_error(&body, "invalid_request_error", "KEY-06").contains("models"));
    let (status, _) = g.admin("POST", "/key/generate", json!({"key": "custom-no-prefix"})).await;
    assert_eq!(status, 400);
    let (status, body) = g.admin("POST", "/key/generate", json!({"key_alias": "other"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = g.admin("POST", "/key/generate", json!({"duration": "soon"})).await;
    assert_eq!(status, 400);
    let custom = g.generate(json!({"key": "sk-my-own-key-1"})).await;
    assert_eq!(custom, "sk-my-own-key-1");

    // Teams, members, users, customers.
    let (_, team) = g
        .admin("POST", "/team/new", json!({"team_id": "t1", "team_alias": "a", "rpm_limit": 5}))
        .await;
    assert_eq!((team["team_id"].as_str(), team["rpm_limit"].as_i64()), (Some("t1"), Some(5)));
    let (status, team) = g
        .admin(
            "POST",
            "/team/member_add",
            json!({"team_id": "t1", "member": {"user_id": "bo", "role": "admin"}}),
        )
        .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["members_with_roles"][0]["user_id"], "bo");
    let (_, upd) =
        g.admin("POST", "/team/update", json!({"team_id": "t1", "max_budget": 9.5})).await;
    assert_eq!(upd["data"]["max_budget"], 9.5);
    let (_, info) = g.admin("GET", "/team/info?team_id=t1", Value::Null).await;
    assert_eq!(info["team_info"]["team_alias"], "a");
    let (_, teams) = g.admin("GET", "/team/list", Value::Null).await;
    assert_eq!(teams.as_array().unwrap().len(), 1);
    let (_, user) = g.admin("GET", "/user/info?user_id=bo", Value::Null).await;
    assert_eq!(user["user_info"]["teams"], json!(["t1"]));
    let (status, user) = g
        .admin(
            "POST",
            "/user/new",
            json!({"user_id": "cy", "user_email": "cy@x", "models": ["good"]}),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    let user_key = user["key"].as_str().unwrap().to_owned();
    assert_eq!(g.chat(&user_key, "good").await.0, 200);
    assert_eq!(g.chat(&user_key, "bad").await.0, 403);

    let (status, cust) = g.admin("POST", "/customer/new", json!({"user_id": "end-1", "alias": "Acme", "max_budget": 3.0, "allowed_model_region": "eu"})).await;
    assert_eq!(status, 200, "{cust}");
    assert_eq!(cust["litellm_budget_table"]["max_budget"], 3.0);
    let (_, cust) =
        g.admin("POST", "/customer/update", json!({"user_id": "end-1", "blocked": true})).await;
    assert_eq!((cust["blocked"].as_bool(), cust["alias"].as_str()), (Some(true), Some("Acme")));
    let (_, cust) = g.admin("GET", "/customer/info?end_user_id=end-1", Value::Null).await;
    assert_eq!(cust["litellm_budget_table"]["max_budget"], 3.0);
    let (status, body) = g
        .admin("POST", "/customer/new", json!({"user_id": "end-2", "allowed_model_region": "mars"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = g.admin("POST", "/customer/delete", json!({"user_ids": ["end-1"]})).await;
    assert_eq!(status, 200);
    let (status, _) = g.admin("GET", "/customer/info?end_user_id=end-1", Value::Null).await;
    assert_eq!(status, 404);

    // Deleting a team deletes its keys.
    let team_key = g.generate(json!({"team_id": "t1"})).await;
    assert_eq!(g.chat(&team_key, "good").await.0, 200);
    let (status, _) = g.admin("POST", "/team/delete", json!({"team_ids": ["t1"]})).await;
    assert_eq!(status, 200);
    assert_eq!(g.chat(&team_key, "good").await.0, 401);

    let health: Value = g
        .client
        .get(format!("{}/health/readiness", g.gw.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["keys"]["backend"], "sqlite");
    assert_eq!(health["keys"]["state"], "ok");
    g.gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_deleted_on_one_replica_is_refused_on_another_within_a_second() {
    let db = TestDb::create().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(dir_a.path(), Some(&db.url())).await;
    let b = start(dir_b.path(), Some(&db.url())).await;
    let key = a.generate(json!({"key_alias": "shared", "models": ["good"]})).await;
    // Created on A: served by B within a second.
    let served =
        eventually(Duration::from_secs(1), || async { b.chat(&key, "good").await.0 == 200 }).await;
    assert!(served, "B did not see the key A created within 1 s");
    // Blocked on A: refused by B within a second.
    a.admin("POST", "/key/block", json!({"key": key})).await;
    let refused =
        eventually(Duration::from_secs(1), || async { b.chat(&key, "good").await.0 == 401 }).await;
    assert!(refused, "B still served a key A blocked");
    a.admin("POST", "/key/unblock", json!({"key": key})).await;
    assert!(
        eventually(Duration::from_secs(1), || async { b.chat(&key, "good").await.0 == 200 }).await
    );
    // Deleted on A: refused by B within a second.
    let (status, _) = a.admin("POST", "/key/delete", json!({"keys": [key]})).await;
    assert_eq!(status, 200);
    let refused =
        eventually(Duration::from_secs(1), || async { b.chat(&key, "good").await.0 == 401 }).await;
    assert!(refused, "B still served a key A deleted");
    assert_eq!(b.keys.status().keys, 0);

    // Times survive LiteLLM's `TIMESTAMP(3)` columns: an expiry in the past refuses, one 30
    // days ahead reads back as such.
    let expired = a.generate(json!({"expires": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(a.chat(&expired, "good").await.0, 401);
    let later = a.generate(json!({"duration": "30d"})).await;
    let (_, info) = a.admin("GET", &format!("/key/info?key={later}"), Value::Null).await;
    let expires =
        chrono::DateTime::parse_from_rfc3339(info["info"]["expires"].as_str().unwrap()).unwrap();
    assert!(expires > chrono::Utc::now() + chrono::TimeDelta::days(29), "{info}");
    assert_eq!(a.chat(&later, "good").await.0, 200);
    a.gw.shutdown().await.unwrap();
    b.gw.shutdown().await.unwrap();
}

/// `"LiteLLM_VerificationToken"` and `"LiteLLM_TeamTable"` as LiteLLM's Prisma migrations create
/// them, with columns Switchyard does not know.
const LITELLM_DDL: &[&str] = &[
    r#"CREATE TABLE "LiteLLM_TeamTable" ("team_id" TEXT NOT NULL, "team_alias" TEXT, "organization_id" TEXT,
        "object_permission_id" TEXT, "admins" TEXT[], "members" TEXT[], "members_with_roles" JSONB NOT NULL DEFAULT '{}',
        "metadata" JSONB NOT NULL DEFAULT '{}', "max_budget" DOUBLE PRECISION, "soft_budget" DOUBLE PRECISION,
        "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, "models" TEXT[], "max_parallel_requests" INTEGER,
        "tpm_limit" BIGINT, "rpm_limit" BIGINT, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
        "blocked" BOOLEAN NOT NULL DEFAULT false, "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
        "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, "model_spend" JSONB NOT NULL DEFAULT '{}',
        "model_max_budget" JSONB NOT NULL DEFAULT '{}', "router_settings" JSONB DEFAULT '{}',
        "team_member_permissions" TEXT[] DEFAULT ARRAY[]::TEXT[], "model_id" INTEGER,
        CONSTRAINT "LiteLLM_TeamTable_pkey" PRIMARY KEY ("team_id"))"#,
    r#"CREATE TABLE "LiteLLM_VerificationToken" ("token" TEXT NOT NULL, "key_name" TEXT, "key_alias" TEXT,
        "soft_budget_cooldown" BOOLEAN NOT NULL DEFAULT false, "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0,
        "expires" TIMESTAMP(3), "models" TEXT[], "aliases" JSONB NOT NULL DEFAULT '{}',
        "config" JSONB NOT NULL DEFAULT '{}', "router_settings" JSONB DEFAULT '{}', "user_id" TEXT, "team_id" TEXT,
        "agent_id" TEXT, "project_id" TEXT, "permissions" JSONB NOT NULL DEFAULT '{}', "max_parallel_requests" INTEGER,
        "metadata" JSONB NOT NULL DEFAULT '{}', "blocked" BOOLEAN, "tpm_limit" BIGINT, "rpm_limit" BIGINT,
        "max_budget" DOUBLE PRECISION, "budget_duration" TEXT, "budget_reset_at" TIMESTAMP(3),
        "allowed_cache_controls" TEXT[] DEFAULT ARRAY[]::TEXT[], "allowed_routes" TEXT[] DEFAULT ARRAY[]::TEXT[],
        "policies" TEXT[] DEFAULT ARRAY[]::TEXT[], "access_group_ids" TEXT[] DEFAULT ARRAY[]::TEXT[],
        "model_spend" JSONB NOT NULL DEFAULT '{}', "model_max_budget" JSONB NOT NULL DEFAULT '{}',
        "budget_id" TEXT, "organization_id" TEXT, "object_permission_id" TEXT,
        "created_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "created_by" TEXT,
        "updated_at" TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, "updated_by" TEXT, "last_active" TIMESTAMP(3),
        "rotation_count" INTEGER DEFAULT 0, "auto_rotate" BOOLEAN DEFAULT false, "rotation_interval" TEXT,
        "last_rotation_at" TIMESTAMP(3), "key_rotation_at" TIMESTAMP(3), "budget_limits" JSONB,
        CONSTRAINT "LiteLLM_VerificationToken_pkey" PRIMARY KEY ("token"))"#,
];

async fn columns(pool: &sqlx::PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_litellm_wrote_authenticates_and_its_tables_are_never_altered() {
    let db = TestDb::create().await;
    let pool = db.pool().await;
    for ddl in LITELLM_DDL {
        sqlx::query(ddl).execute(&pool).await.unwrap();
    }
    let litellm_key = "sk-litellm-made-0001";
    sqlx::query(r#"INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, models) VALUES ('lt', 'legacy', ARRAY['good'])"#)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        r#"INSERT INTO "LiteLLM_VerificationToken" (token, key_name, key_alias, models, team_id, user_id, metadata)
           VALUES ($1, 'sk-...0001', 'from-litellm', ARRAY[]::TEXT[], 'lt', 'old-user', '{"tags": ["legacy"]}')"#,
    )
    .bind(hash_key(litellm_key))
    .execute(&pool)
    .await
    .unwrap();
    let before = columns(&pool, "LiteLLM_VerificationToken").await;

    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), Some(&db.url())).await;
    assert_eq!(g.chat(litellm_key, "good").await.0, 200);
    // Its team's allow-list applies.
    let (status, body) = g.chat(litellm_key, "bad").await;
    assert_eq!(status, 403);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("team not allowed"), "{body}");

    // A key made here lands in LiteLLM's table with LiteLLM's defaults for what it does not know.
    let ours = g.generate(json!({"key_alias": "ours", "team_id": "lt", "models": ["good"]})).await;
    let (cooldown, rotation): (bool, Option<i32>) = sqlx::query_as(
        r#"SELECT soft_budget_cooldown, rotation_count FROM "LiteLLM_VerificationToken" WHERE token = $1"#,
    )
    .bind(hash_key(&ours))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((cooldown, rotation), (false, Some(0)));
    let models: Vec<String> =
        sqlx::query_scalar(r#"SELECT models FROM "LiteLLM_VerificationToken" WHERE token = $1"#)
            .bind(hash_key(&ours))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(models, ["good"]);
    assert_eq!(columns(&pool, "LiteLLM_VerificationToken").await, before);
    let (_, info) = g.admin("GET", &format!("/key/info?key={litellm_key}"), Value::Null).await;
    assert_eq!(
        (info["info"]["key_alias"].as_str(), info["info"]["tags"].clone()),
        (Some("from-litellm"), json!(["legacy"]))
    );
    g.gw.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_cut_keys_keep_serving_from_memory_and_health_says_degraded() {
    let db = TestDb::create().await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), Some(&db.url_at(relay.addr))).await;
    let key = g.generate(json!({"key_alias": "steady"})).await;
    relay.cut();
    let degraded =
        eventually(Duration::from_secs(10), || async { g.keys.status().state == "degraded" }).await;
    assert!(degraded, "{:?}", g.keys.status());
    assert_eq!(g.chat(&key, "good").await.0, 200);
    let health: Value = g
        .client
        .get(format!("{}/health/readiness", g.gw.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["keys"]["state"], "degraded");
    assert!(health["keys"]["error"].is_string());
    // A write needs the database: a clear 500 (KEY-08), nothing half-done.
    let (status, body) = g.admin("POST", "/key/generate", json!({})).await;
    assert_eq!(status, 500, "{body}");
    openai_error(&body, "api_error", "KEY-08");
    // With fail_closed, a virtual key is not trusted from a stale snapshot; the master key is.
    let strict = format!("{}  fail_closed: true\n", yaml(&g._mock));
    let cfg = switchyard::config::load_from_str(
        &strict,
        Path::new("strict.yaml"),
        &switchyard::config::MapEnv::default(),
    )
    .unwrap();
    g.gw.state.replace(switchyard::server::Runtime::new(cfg));
    let (status, body) = g.chat(&key, "good").await;
    assert_eq!(status, 503, "{body}");
    openai_error(&body, "api_error", "KEY-10");
    assert_eq!(g.chat(MASTER, "good").await.0, 200);
    relay.restore();
    let ok = eventually(Duration::from_secs(10), || async { g.keys.status().state == "ok" }).await;
    assert!(ok);
    assert_eq!(g.chat(&key, "good").await.0, 200, "trusted again once the store answers");
    g.gw.shutdown().await.unwrap();
}

/// `switchyard keys …` as an operator runs it, against the state directory a gateway serves.
fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("keys")
        .args(args)
        .arg("--config")
        .arg(dir.join("gw.yaml"))
        .arg("--state-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_lists_updates_and_revokes_keys_a_running_gateway_honours() {
    let dir = tempfile::tempdir().unwrap();
    let g = start(dir.path(), None).await;
    std::fs::write(dir.path().join("gw.yaml"), yaml(&g._mock)).unwrap();

    let (code, out, err) = cli(dir.path(), &["create", "--alias", "laptop", "--models", "good"]);
    assert_eq!(code, 0, "{err}");
    let key = out.lines().next().unwrap().trim().to_owned();
    assert!(key.starts_with("sk-") && out.contains("shown once"), "{out}");
    let served =
        eventually(Duration::from_secs(1), || async { g.chat(&key, "good").await.0 == 200 }).await;
    assert!(served, "the gateway did not see the key the CLI created within 1 s");
    assert_eq!(g.chat(&key, "bad").await.0, 403);

    let (code, out, _) = cli(dir.path(), &["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&hash_key(&key)) && out.contains("laptop") && !out.contains(&key),
        "{out}"
    );
    let (code, out, _) = cli(dir.path(), &["info", &key, "--json"]);
    assert_eq!(code, 0);
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["info"]["key_alias"], "laptop");

    let (code, _, err) = cli(dir.path(), &["update", &key, "--models", "good,flaky"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        eventually(Duration::from_secs(1), || async { g.chat(&key, "flaky").await.0 == 200 }).await
    );

    let (code, out, err) = cli(dir.path(), &["revoke", "--alias", "laptop"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"));
    let refused =
        eventually(Duration::from_secs(1), || async { g.chat(&key, "good").await.0 == 401 }).await;
    assert!(refused, "the gateway still served a key the CLI revoked");

    let (code, _, err) = cli(dir.path(), &["revoke", "--alias", "laptop"]);
    assert_eq!(code, 1);
    assert!(err.contains("KEY-07"), "{err}");
    let (code, _, err) = cli(dir.path(), &["create", "--duration", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("KEY-06") && err.contains("duration"), "{err}");
    g.gw.shutdown().await.unwrap();
}
