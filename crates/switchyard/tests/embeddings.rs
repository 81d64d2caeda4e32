//! `POST /v1/embeddings` end to end: a client → an in-process gateway (port 0) → the mock's
//! OpenAI embeddings and Bedrock Titan/Cohere emulations. Asserts the vectors each input gets
//! (the mock derives them from the input, so order is checked, not assumed), float and base64
//! encodings, `dimensions`, what reaches each upstream, failover from a failing embedding
//! deployment, the EMB-xx refusals, a virtual key's budget and allow-list, the ledger row,
//! and the `/health` probe of an embedding model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ledger_support;
mod support;

use std::time::Duration;

use base64::Engine as _;
use mock_upstream::{AwsIdentity, MockUpstream, Reply, embedding_of, tokens_of, tokens_text};
use serde_json::{Value, json};
use switchyard::config::{self};
use switchyard::keys::{Keys, POLL, Settings as KeySettings};
use switchyard::ledger::{Ledger, Settings as LedgerSettings};
use switchyard::server::Handle;

const OPENAI_KEY: &str = "sk-proj-embed-0123456789abcdefghijkl";
const AWS_KEY: &str = "AKIAMOCKEMBED0000001";
const AWS_SECRET: &str = "mockEmbedSecretAccessKey000000000000000";
const MASTER: &str = "sk-gw-embed-0123456789";

/// A mock that takes the OpenAI key and the AWS test identity.
async fn mock() -> MockUpstream {
    let mock = MockUpstream::builder().api_key(OPENAI_KEY).start().await;
    mock.aws().identity(AwsIdentity::new(AWS_KEY, AWS_SECRET));
    mock
}

/// A `model_list` entry: alias, id, `model`, extra litellm_params and model_info lines.
fn entry(
    mock: &MockUpstream,
    alias: &str,
    id: &str,
    model: &str,
    params: &[&str],
    info: &[&str],
) -> String {
    let mut out = format!("  - model_name: {alias}\n    litellm_params:\n      model: {model}\n");
    let wire: Vec<String> = if model.starts_with("bedrock/") {
        vec![
            "aws_region_name: us-east-1".into(),
            format!("aws_bedrock_runtime_endpoint: {}", mock.url()),
            format!("aws_access_key_id: {AWS_KEY}"),
            format!("aws_secret_access_key: {AWS_SECRET}"),
        ]
    } else if model.starts_with("anthropic/") {
        vec!["api_key: sk-ant-unused".into(), "mock_response: CHAT".into()]
    } else {
        vec![format!("api_key: {OPENAI_KEY}"), format!("api_base: {}/v1", mock.url())]
    };
    for line in wire.iter().map(String::as_str).chain(params.iter().copied()) {
        out.push_str(&format!("      {line}\n"));
    }
    out.push_str(&format!("    model_info:\n      id: {id}\n"));
    for line in info {
        out.push_str(&format!("      {line}\n"));
    }
    out
}

fn config(entries: &[String], extra: &str) -> config::Config {
    let text = format!(
        "model_list:\n{}router_settings:\n  num_retries: 0\ngeneral_settings:\n  master_key: {MASTER}\n{extra}",
        entries.concat()
    );
    support::config(&text, &support::no_home())
}

async fn start(config: config::Config) -> Handle {
    support::start(config).await
}

/// POSTs `body` to `path` with `key`: (status, headers, JSON body).
async fn post(
    gw: &Handle,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", gw.url()))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn embed(gw: &Handle, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    post(gw, "/v1/embeddings", MASTER, body).await
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn from_base64(v: &Value) -> Vec<f32> {
    let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The answer's vectors in `data` order, after checking each `index` is its position.
fn vectors(body: &Value, decode: fn(&Value) -> Vec<f32>) -> Vec<Vec<f32>> {
    assert_eq!(body["object"], "list", "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["object"], "embedding");
            assert_eq!(item["index"], i);
            decode(&item["embedding"])
        })
        .collect()
}

#[tokio::test]
async fn openai_compatible_vectors_come_back_in_input_order_with_usage_and_cost() {
    let mock = mock().await;
    let gw = start(config(
        &[entry(
            &mock,
            "embed",
            "e-oai",
            "openai/text-embedding-3-small",
            &[],
            &["mode: embedding"],
        )],
        "",
    ))
    .await;
    let inputs = ["alpha", "be", "gamma delta epsilon"];
    let (status, headers, body) =
        embed(&gw, &json!({"model": "embed", "input": inputs, "user": "u-9"})).await;
    assert_eq!(status, 200, "{body}");
    let expected: Vec<Vec<f32>> = inputs.iter().map(|t| embedding_of(t, 1536)).collect();
    assert_eq!(vectors(&body, floats), expected);
    let tokens: u64 = inputs.iter().map(|t| tokens_of(t)).sum();
    assert_eq!(body["usage"], json!({"prompt_tokens": tokens, "total_tokens": tokens}));
    assert_eq!(body["model"], "text-embedding-3-small");
    // $0.02 per million input tokens, from the built-in table.
    let cost = rust_decimal::Decimal::from(tokens) * rust_decimal::Decimal::new(2, 8);
    assert_eq!(headers["x-litellm-response-cost"].to_str().unwrap(), cost.normalize().to_string());
    assert_eq!(headers["x-litellm-model-id"], "e-oai");

    let sent = &mock.received()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {OPENAI_KEY}").as_str()));
    assert_eq!(
        sent.body,
        json!({"model": "text-embedding-3-small", "input": inputs, "encoding_format": "float",
               "user": "u-9"})
    );
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn base64_dimensions_token_ids_and_every_route_work() {
    let mock = mock().await;
    let gw = start(config(
        &[entry(&mock, "large", "e-large", "openai/text-embedding-3-large", &[], &[])],
        "",
    ))
    .await;
    // base64 (the OpenAI SDKs' default): the gateway encodes what the upstream sent as floats.
    let (status, _, body) = embed(
        &gw,
        &json!({"model": "large", "input": "one text", "encoding_format": "base64", "dimensions": 256}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vectors(&body, from_base64), vec![embedding_of("one text", 256)]);
    assert_eq!(mock.received()[0].body["dimensions"], 256);
    assert_eq!(mock.received()[0].body["encoding_format"], "float");

    // Token ids pass through as they are.
    let (status, _, body) =
        embed(&gw, &json!({"model": "large", "input": [[1, 2, 3], [40]]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        vectors(&body, floats),
        vec![embedding_of(&tokens_text(&[1, 2, 3]), 3072), embedding_of(&tokens_text(&[40]), 3072)]
    );
    assert_eq!(mock.received()[1].body["input"], json!([[1, 2, 3], [40]]));
    assert_eq!(body["usage"]["prompt_tokens"], 4);

    // LiteLLM's other mounts; the path's model wins over the body's.
    for path in ["/embeddings", "/engines/large/embeddings", "/openai/deployments/large/embeddings"]
    {
        let (status, _, body) =
            post(&gw, path, MASTER, &json!({"model": "nothing-by-that-name", "input": "x"})).await;
        if path == "/embeddings" {
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(body["error"]["code"], "unknown_model");
        } else {
            assert_eq!(status, 200, "{path}: {body}");
            assert_eq!(vectors(&body, floats), vec![embedding_of("x", 3072)]);
        }
    }
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn titan_v2_fans_a_batch_out_one_signed_call_per_text_in_order() {
    let mock = mock().await;
    let gw = start(config(
        &[entry(&mock, "titan", "e-titan", "bedrock/amazon.titan-embed-text-v2:0", &[], &[])],
        "",
    ))
    .await;
    let inputs: Vec<String> =
        (0..11).map(|i| format!("chunk number {i} {}", "x".repeat(i))).collect();
    let (status, headers, body) =
        embed(&gw, &json!({"model": "titan", "input": inputs, "dimensions": 512})).await;
    assert_eq!(status, 200, "{body}");
    let expected: Vec<Vec<f32>> = inputs.iter().map(|t| embedding_of(t, 512)).collect();
    assert_eq!(vectors(&body, floats), expected);
    let tokens: u64 = inputs.iter().map(|t| tokens_of(t)).sum();
    assert_eq!(body["usage"]["prompt_tokens"], tokens);
    assert_eq!(body["model"], "amazon.titan-embed-text-v2:0");
    assert!(headers.contains_key("x-litellm-response-cost"));

    let calls = mock.received();
    assert_eq!(calls.len(), inputs.len());
    let mut texts: Vec<String> = Vec::new();
    for call in &calls {
        assert_eq!(call.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
        assert!(
            call.header("authorization")
                .unwrap()
                .starts_with("AWS4-HMAC-SHA256 Credential=AKIAMOCKEMBED0000001/")
        );
        assert_eq!(call.body.as_object().unwrap().len(), 2, "{}", call.body);
        assert_eq!(call.body["dimensions"], 512);
        texts.push(call.body["inputText"].as_str().unwrap().to_owned());
    }
    texts.sort();
    let mut sent = inputs.clone();
    sent.sort();
    assert_eq!(texts, sent);

    // A size Titan v2 cannot make is refused before anything is sent.
    let (status, _, body) =
        embed(&gw, &json!({"model": "titan", "input": "x", "dimensions": 300})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "EMB-03");
    assert!(body["error"]["message"].as_str().unwrap().contains("256, 512 or 1024"), "{body}");
    assert_eq!(mock.calls(), inputs.len());
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn cohere_gets_one_call_with_its_input_type_and_refuses_token_ids() {
    let mock = mock().await;
    let gw = start(config(
        &[entry(&mock, "cohere", "e-co", "bedrock/cohere.embed-multilingual-v3", &[], &[])],
        "",
    ))
    .await;
    let (status, _, body) =
        embed(&gw, &json!({"model": "cohere", "input": ["hola", "mundo"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        vectors(&body, floats),
        vec![embedding_of("hola", 1024), embedding_of("mundo", 1024)]
    );
    let call = &mock.received()[0];
    assert_eq!(call.path, "/model/cohere.embed-multilingual-v3/invoke");
    assert_eq!(call.body, json!({"texts": ["hola", "mundo"], "input_type": "search_document"}));

    let (status, _, body) = embed(
        &gw,
        &json!({"model": "cohere", "input": "what is it?", "input_type": "search_query", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vectors(&body, from_base64), vec![embedding_of("what is it?", 1024)]);
    assert_eq!(mock.received()[1].body["input_type"], "search_query");

    let (status, _, body) = embed(&gw, &json!({"model": "cohere", "input": [[1, 2]]})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "EMB-04");
    let (status, _, body) =
        embed(&gw, &json!({"model": "cohere", "input": "x", "dimensions": 256})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "EMB-03");
    assert_eq!(mock.calls(), 2);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_embedding_deployment_fails_over_to_the_next() {
    let mock = mock().await;
    let gw = start(config(
        &[
            entry(
                &mock,
                "embed",
                "e-first",
                "openai/text-embedding-3-small",
                &["order: 1"],
                &["mode: embedding"],
            ),
            entry(
                &mock,
                "embed",
                "e-second",
                "bedrock/amazon.titan-embed-text-v2:0",
                &["order: 2"],
                &[],
            ),
        ],
        "",
    ))
    .await;
    mock.push(Reply::error(503, "server_error", "The server is overloaded."));
    let (status, headers, body) = embed(&gw, &json!({"model": "embed", "input": ["a", "b"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vectors(&body, floats), vec![embedding_of("a", 1024), embedding_of("b", 1024)]);
    let attempts = headers["x-switchyard-attempts"].to_str().unwrap();
    assert!(attempts.starts_with("e-first=") && attempts.ends_with("e-second=ok"), "{attempts}");
    assert_eq!(headers["x-litellm-model-id"], "e-second");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn chat_and_embedding_requests_to_the_wrong_kind_of_model_say_so() {
    let mock = mock().await;
    let gw = start(config(
        &[
            entry(
                &mock,
                "embed",
                "e-oai",
                "openai/text-embedding-3-small",
                &[],
                &["mode: embedding"],
            ),
            entry(&mock, "titan", "e-titan", "bedrock/amazon.titan-embed-text-v2:0", &[], &[]),
            entry(&mock, "gpt", "c-gpt", "openai/gpt-4o", &[], &["mode: chat"]),
            entry(&mock, "claude", "c-claude", "anthropic/claude-haiku-4-5", &[], &[]),
        ],
        "",
    ))
    .await;
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    for model in ["embed", "titan"] {
        let (status, _, body) = post(&gw, "/v1/chat/completions", MASTER, &chat(model)).await;
        assert_eq!(status, 400, "{model}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["diagnosis"]["id"], "EMB-02", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("/v1/embeddings"), "{body}");
    }
    for model in ["gpt", "claude"] {
        let (status, _, body) = embed(&gw, &json!({"model": model, "input": "x"})).await;
        assert_eq!(status, 400, "{model}: {body}");
        assert_eq!(body["error"]["diagnosis"]["id"], "EMB-01", "{body}");
    }
    // Nothing reached an upstream.
    assert_eq!(mock.calls(), 0);
    // A malformed request names its field.
    let (status, _, body) = embed(&gw, &json!({"model": "embed", "input": []})).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("input")), "{body}");
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_virtual_key_pays_for_embeddings_and_each_request_is_a_ledger_row() {
    let mock = mock().await;
    let dir = tempfile::tempdir().unwrap();
    // $10 per million input tokens, so one request's cost is easy to read.
    let gw = start(config(
        &[
            entry(
                &mock,
                "paid-embed",
                "e-oai",
                "openai/text-embedding-3-small",
                &["input_cost_per_token: 0.00001"],
                &["mode: embedding"],
            ),
            entry(&mock, "other", "e-other", "openai/text-embedding-3-large", &[], &[]),
        ],
        "",
    ))
    .await;
    let keys =
        Keys::open(&KeySettings { database_url: None, state_dir: dir.path().to_owned() }).unwrap();
    keys.start(POLL).await;
    gw.state.set_keys(keys.clone());
    let ledger = Ledger::open(&LedgerSettings {
        database_url: None,
        state_dir: dir.path().to_owned(),
        retention: None,
    })
    .unwrap();
    gw.state.set_ledger(ledger.clone());

    // Budget for one request: 16 characters are 4 tokens upstream ($0.00004 spent) but the
    // reservation counts the gateway's estimate (7 tokens, $0.00007), so the second no
    // longer fits under $0.0001.
    let (status, _, created) = post(
        &gw,
        "/key/generate",
        MASTER,
        &json!({"models": ["paid-embed"], "max_budget": 0.0001, "key_alias": "indexer"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let body =
        json!({"model": "paid-embed", "input": "abcdefghijklmnop", "metadata": {"tags": ["rag"]}});
    let (status, headers, answer) = post(&gw, "/v1/embeddings", &key, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(headers["x-litellm-response-cost"], "0.00004");
    let (status, _, refused) = post(&gw, "/v1/embeddings", &key, &body).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["type"], "budget_exceeded", "{refused}");
    assert_eq!(mock.calls(), 1);
    // The allow-list holds for embeddings too.
    let (status, _, denied) =
        post(&gw, "/v1/embeddings", &key, &json!({"model": "other", "input": "x"})).await;
    assert_eq!(status, 403, "{denied}");

    ledger.flush().await;
    let rows = ledger_support::sqlite_rows(&ledger_support::sqlite_pool(dir.path()).await).await;
    let served: Vec<_> = rows.iter().filter(|r| r.status == "success").collect();
    assert_eq!(served.len(), 1, "{rows:?}");
    let row = served[0];
    assert_eq!(row.call_type, "aembedding");
    assert_eq!((row.prompt_tokens, row.completion_tokens, row.total_tokens), (4, 0, 4));
    assert_eq!(row.spend.as_deref(), Some("0.00004"));
    assert_eq!(
        (row.model.as_str(), row.model_id.as_str(), row.model_group.as_str()),
        ("text-embedding-3-small", "e-oai", "paid-embed")
    );
    let hash = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    assert_eq!(row.api_key, hash);
    assert!(rows.iter().all(|r| r.call_type == "aembedding"), "{rows:?}");
    let pool = ledger_support::sqlite_pool(dir.path()).await;
    let tags: String = sqlx::query_scalar(
        r#"SELECT request_tags FROM "LiteLLM_SpendLogs" WHERE status = 'success'"#,
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&tags).unwrap(), json!(["rag"]));

    // Metrics as for chat: the served request under its alias and model, its input tokens.
    let metrics =
        reqwest::get(format!("{}/metrics", gw.url())).await.unwrap().text().await.unwrap();
    let sample = |name: &str, labels: &[&str]| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
            .sum()
    };
    let alias = "requested_model=\"paid-embed\"";
    let served =
        sample("litellm_proxy_total_requests_metric_total", &[alias, "status_code=\"200\""]);
    assert_eq!(served, 1.0, "{metrics}");
    assert_eq!(sample("litellm_input_tokens_metric_total", &[alias]), 4.0, "{metrics}");
    assert_eq!(sample("litellm_output_tokens_metric_total", &[alias]), 0.0, "{metrics}");
    ledger.close(Duration::from_secs(5)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_embeds_one_word_for_an_embedding_model() {
    let mock = mock().await;
    let gw = start(config(
        &[
            entry(
                &mock,
                "embed",
                "e-oai",
                "openai/text-embedding-3-small",
                &[],
                &["mode: embedding"],
            ),
            entry(&mock, "titan", "e-titan", "bedrock/amazon.titan-embed-text-v2:0", &[], &[]),
        ],
        "",
    ))
    .await;
    let resp = reqwest::Client::new()
        .get(format!("{}/health", gw.url()))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["healthy_count"], 2, "{body}");
    let mut paths: Vec<String> = mock.received().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/model/amazon.titan-embed-text-v2%3A0/invoke", "/v1/embeddings"]);
    for r in mock.received() {
        let word = r.body.get("input").or_else(|| r.body.get("inputText")).unwrap();
        assert!(word == "WORKS" || word == &json!(["WORKS"]), "{}", r.body);
    }
    gw.shutdown().await.unwrap();
}
