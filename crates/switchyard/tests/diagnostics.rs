//! The diagnosis catalog (`../shared/DIAGNOSES.md`), entry by entry: each failure is provoked
//! through the mock upstream (Anthropic, Bedrock, STS), a broken config or the network, and
//! its class, cause and remedy are asserted where a person meets them — the error a client
//! receives (OpenAI and Anthropic shapes, `x-switchyard-error-class`), `/health` (live
//! probe) and `doctor`'s report. GW-05, CFG-01..06, GW-03 and `/health`'s caching are in
//! `tests/health_and_gateway.rs`; GW-01/02/04 in `tests/verify.rs` and `tests/gateway_http.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod diag_support;
mod support;

use std::time::Duration;

use diag_support::*;
use mock_upstream::{AwsError, AwsIdentity, MockUpstream, Reply};
use serde_json::{Value, json};
use switchyard::diagnose::{DoctorOptions, doctor};

const KEY_ID: &str = "AKIADIAGNOSTICS00001";
const SECRET: &str = "diagnostics-secret-0000000000000000000000";
const SSO_ARN: &str =
    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeAccess_0a1b2c3d/dev@example.com";
const HAIKU: &str = "bedrock/anthropic.claude-3-haiku-20240307-v1:0";
const SONNET_US: &str = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// One catalog entry and how to provoke it.
struct Case {
    id: &'static str,
    class: &'static str,
    /// The deployment's litellm_params; `{mock}` is the mock's URL.
    params: Vec<&'static str>,
    /// The env file.
    env: String,
    setup: Box<dyn Fn(&MockUpstream)>,
    cause: &'static str,
    remedy: &'static str,
    /// Provoked by a streamed request (the failure comes after the first event).
    stream: bool,
}

fn aws_keys() -> String {
    format!("AWS_ACCESS_KEY_ID={KEY_ID}\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
}

fn ant_key(key: &str) -> String {
    format!("ANTHROPIC_API_KEY={key}\n")
}

/// The identity the keys belong to, and what Bedrock answers once they are accepted.
fn known_then(reply: Reply) -> Box<dyn Fn(&MockUpstream)> {
    Box::new(move |mock| {
        mock.aws().identity(AwsIdentity::new(KEY_ID, SECRET).arn(SSO_ARN));
        mock.set_default(reply.clone());
    })
}

fn reply(reply: Reply) -> Box<dyn Fn(&MockUpstream)> {
    Box::new(move |mock| mock.set_default(reply.clone()))
}

fn aws(
    id: &'static str,
    class: &'static str,
    setup: Box<dyn Fn(&MockUpstream)>,
    cause: &'static str,
    remedy: &'static str,
) -> Case {
    Case {
        id,
        class,
        params: vec![HAIKU, "aws_region_name: us-east-1"],
        env: aws_keys(),
        setup,
        cause,
        remedy,
        stream: false,
    }
}

fn ant(
    id: &'static str,
    class: &'static str,
    r: Reply,
    cause: &'static str,
    remedy: &'static str,
) -> Case {
    Case {
        id,
        class,
        params: vec![
            "model: anthropic/claude-sonnet-4-5",
            "api_key: os.environ/ANTHROPIC_API_KEY",
            "api_base: {mock}",
        ],
        env: ant_key(ANTHROPIC_KEY),
        setup: reply(r),
        cause,
        remedy,
        stream: false,
    }
}

fn cases() -> Vec<Case> {
    let skew = "Signature expired: 20180920T174101Z is now earlier than 20180920T174504Z (20180920T175004Z - 5 min.)";
    vec![
        aws(
            "AWS-01",
            "credentials_invalid",
            reply(Reply::text("unused")),
            "AWS did not recognise the credentials",
            "aws sso login",
        ),
        aws(
            "AWS-02",
            "credentials_expired",
            Box::new(|mock: &MockUpstream| {
                let past = std::time::SystemTime::now() - Duration::from_secs(60);
                mock.aws().identity(AwsIdentity::new(KEY_ID, SECRET).expires_at(past));
            }),
            "expired",
            "cannot refresh",
        ),
        Case {
            params: vec![HAIKU, "aws_region_name: us-east-1", "aws_profile_name: claude"],
            env: String::new(),
            ..aws(
                "AWS-03",
                "credentials_expired",
                reply(Reply::text("unused")),
                "needs a login",
                "aws sso login --profile claude",
            )
        },
        Case {
            params: vec![HAIKU, "aws_region_name: us-east-1", "aws_profile_name: nocreds"],
            env: String::new(),
            ..aws(
                "AWS-04",
                "credentials_missing",
                reply(Reply::text("unused")),
                "nocreds",
                "AWS_BEARER_TOKEN_BEDROCK",
            )
        },
        Case {
            params: vec![SONNET_US, "aws_region_name: us-east-1"],
            ..aws(
                "AWS-05",
                "permission_denied",
                known_then(AwsError::not_authorized().into()),
                "a permission is missing. It is the SSO permission set `ClaudeAccess`",
                "Grant this minimal policy",
            )
        },
        aws(
            "AWS-06",
            "permission_denied",
            known_then(AwsError::explicit_deny_scp().into()),
            "explicit deny in a service control policy",
            "adding a policy will not help",
        ),
        aws(
            "AWS-07",
            "model_access",
            known_then(AwsError::model_access_denied().into()),
            "has not been given access to model",
            "Model access",
        ),
        aws(
            "AWS-08",
            "model_access",
            known_then(AwsError::marketplace_subscription_missing().into()),
            "Marketplace",
            "aws-marketplace:Subscribe",
        ),
        Case {
            params: vec![
                "model: bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
                "aws_region_name: us-east-1",
            ],
            ..aws(
                "AWS-09",
                "model_needs_profile",
                known_then(AwsError::on_demand_not_supported().into()),
                "served only through an inference profile",
                "model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            )
        },
        aws(
            "AWS-10",
            "model_not_found",
            known_then(AwsError::invalid_model_identifier().into()),
            "does not know the model id",
            "Write an id Bedrock serves",
        ),
        aws(
            "AWS-11",
            "credentials_invalid",
            Box::new(|mock: &MockUpstream| {
                mock.aws().identity(AwsIdentity::new(KEY_ID, "another-secret"));
            }),
            "does not belong to the access key",
            "Re-issue the key pair",
        ),
        aws(
            "AWS-12",
            "clock_skew",
            known_then(AwsError::new(403, "InvalidSignatureException", skew).into()),
            "The local clock is",
            "NTP",
        ),
        Case {
            params: vec![
                HAIKU,
                "aws_region_name: us-east-1",
                "api_key: bedrock-api-key-expired0000000000",
            ],
            env: String::new(),
            ..aws(
                "AWS-13",
                "credentials_invalid",
                reply(Reply::text("unused")),
                "not a valid Bedrock API key",
                "Generate a new API key",
            )
        },
        Case {
            params: vec![HAIKU],
            ..aws(
                "AWS-14",
                "configuration",
                reply(Reply::text("unused")),
                "gives the deployment of `tier`",
                "aws_region_name",
            )
        },
        aws(
            "AWS-15",
            "rate_limited",
            known_then(AwsError::throttling().into()),
            "throttled",
            "quota increase",
        ),
        aws(
            "AWS-16",
            "upstream_unavailable",
            known_then(AwsError::service_unavailable().into()),
            "transient ServiceUnavailableException",
            "falls back",
        ),
        aws(
            "AWS-17",
            "context_window",
            known_then(AwsError::prompt_too_long(250_000, 200_000).into()),
            "250000 tokens; the model allows 200000",
            "context_window_fallbacks",
        ),
        Case {
            stream: true,
            ..aws(
                "AWS-18",
                "rate_limited",
                known_then(AwsError::throttling().mid_stream(3)),
                "in the middle of the stream",
                "after that the stream ends",
            )
        },
        Case {
            env: ant_key("sk-ant-api03-revoked-00000000000000000000"),
            ..ant(
                "ANT-01",
                "credentials_invalid",
                Reply::text("unused"),
                "did not accept the API key",
                "start with `sk-ant-`",
            )
        },
        ant(
            "ANT-02",
            "permission_denied",
            Reply::error(
                403,
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            "cannot use model `claude-sonnet-4-5`",
            "Workspaces",
        ),
        Case {
            params: vec![
                "model: anthropic/claude-sonet-4-5",
                "api_key: os.environ/ANTHROPIC_API_KEY",
                "api_base: {mock}",
            ],
            ..ant(
                "ANT-03",
                "model_not_found",
                Reply::error(404, "not_found_error", "model: claude-sonet-4-5"),
                "Close matches: claude-sonnet-4-5",
                "model: anthropic/claude-sonnet-4-5",
            )
        },
        ant(
            "ANT-04",
            "context_window",
            Reply::error(
                400,
                "invalid_request_error",
                "prompt is too long: 209303 tokens > 200000 maximum",
            ),
            "209303 tokens; the model allows 200000",
            "context_window_fallbacks",
        ),
        ant(
            "ANT-05",
            "billing",
            Reply::error(
                400,
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
            ),
            "no credit left",
            "Add credits",
        ),
        ant(
            "ANT-06",
            "rate_limited",
            Reply::error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            )
            .retry_after(7),
            "wait 7 s",
            "Retry after",
        ),
        ant(
            "ANT-07",
            "overloaded",
            Reply::error(529, "overloaded_error", "Overloaded"),
            "transient error (HTTP 529)",
            "retry shortly",
        ),
        ant(
            "ANT-08",
            "payload_too_large",
            Reply::error(
                413,
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
            ),
            "accepts at most",
            "smaller images",
        ),
        Case {
            stream: true,
            ..ant(
                "ANT-09",
                "overloaded",
                Reply::stream_error_after(3, "overloaded_error", "Overloaded"),
                "in the middle of the stream",
                "the stream ends with this error",
            )
        },
        Case {
            params: vec![
                "model: anthropic/claude-sonnet-4-5",
                "api_key: os.environ/ANTHROPIC_API_KEY",
                "api_base: http://127.0.0.1:1",
            ],
            ..ant(
                "NET-01",
                "server_down",
                Reply::text("unused"),
                "127.0.0.1:1 (Connection refused",
                "Start the server that should listen on 127.0.0.1:1",
            )
        },
        Case {
            params: vec![
                "model: anthropic/claude-sonnet-4-5",
                "api_key: os.environ/ANTHROPIC_API_KEY",
                "api_base: {mock_https}",
            ],
            ..ant("NET-02", "tls", Reply::text("unused"), "TLS", "ssl_verify: /path/to/ca.pem")
        },
        Case {
            params: vec![
                "model: anthropic/claude-sonnet-4-5",
                "api_key: os.environ/ANTHROPIC_API_KEY",
                "api_base: {mock}",
                "timeout: 0.3",
            ],
            ..ant(
                "NET-03",
                "timeout",
                Reply::text("late").delay(Duration::from_secs(2)),
                "0.3",
                "timeout",
            )
        },
    ]
}

fn config_text(case: &Case, mock: &MockUpstream) -> String {
    let https = mock.url().replace("http://", "https://");
    let params: String = case
        .params
        .iter()
        .map(|p| {
            let p = if p.starts_with("bedrock/") { format!("model: {p}") } else { (*p).to_owned() };
            format!("      {}\n", p.replace("{mock_https}", &https).replace("{mock}", &mock.url()))
        })
        .collect();
    format!(
        "model_list:\n  - model_name: tier\n    litellm_params:\n{params}    model_info:\n      id: tier-0\n\
         router_settings:\n  num_retries: 0\n  disable_cooldowns: true\ngeneral_settings:\n  master_key: {MASTER}\n"
    )
}

fn say(stream: bool) -> Value {
    json!({"model": "tier", "stream": stream, "max_tokens": 10, "messages": [{"role": "user", "content": "Say: WORKS"}]})
}

/// The error chunk of an OpenAI SSE stream.
fn stream_error(text: &str) -> Value {
    text.split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("error").is_some())
        .unwrap_or_else(|| panic!("no error chunk in\n{text}"))["error"]
        .clone()
}

fn check_diagnosis(where_: &str, case: &Case, diagnosis: &Value) {
    assert_eq!(diagnosis["id"], case.id, "{where_}: {diagnosis}");
    let cause = diagnosis["cause"].as_str().unwrap_or_default();
    let remedy = diagnosis["remedy"].as_str().unwrap_or_default();
    assert!(
        cause.contains(case.cause),
        "{} {where_}: cause lacks `{}`: {cause}",
        case.id,
        case.cause
    );
    assert!(
        remedy.contains(case.remedy),
        "{} {where_}: remedy lacks `{}`: {remedy}",
        case.id,
        case.remedy
    );
    assert!(cause.contains("tier"), "{} {where_}: the deployment is not named: {cause}", case.id);
    assert!(!cause.contains(SECRET) && !cause.contains(ANTHROPIC_KEY), "a secret leaked: {cause}");
}

#[tokio::test]
async fn every_provider_and_network_entry_reaches_the_client_health_and_doctor() {
    for case in cases() {
        let home = Home::new();
        let mock = MockUpstream::builder().api_key(ANTHROPIC_KEY).start().await;
        (case.setup)(&mock);
        let env_file = home.write("entry.env", &case.env);
        let config = home.write("entry.yaml", &config_text(&case, &mock));
        let env = home.env(&mock);
        let cfg = load(&config, &[env_file], &env);
        let gw = gateway(cfg.clone(), &env).await;
        let http = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            http.post(format!("{}{path}", gw.url())).bearer_auth(MASTER).json(&body).send()
        };

        // The client's error: OpenAI shape, class in `code` and in the header.
        let resp = post("/v1/chat/completions", say(case.stream)).await.unwrap();
        let status = resp.status().as_u16();
        let header =
            resp.headers().get("x-switchyard-error-class").map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let error = if case.stream {
            assert_eq!(status, 200, "{}: {text}", case.id);
            assert!(text.trim_end().ends_with("data: [DONE]"), "{}: {text}", case.id);
            stream_error(&text)
        } else {
            assert!(status >= 400, "{}: {status} {text}", case.id);
            assert_eq!(header.as_deref(), Some(case.class), "{}: {text}", case.id);
            serde_json::from_str::<Value>(&text).unwrap()["error"].clone()
        };
        assert_eq!(error["code"], case.class, "{}: {error}", case.id);
        check_diagnosis("client", &case, &error["diagnosis"]);
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(" Fix: "), "{}: {message}", case.id);
        if !case.stream {
            // After the first event the stream's error names the deployment in its cause.
            assert!(message.contains("tier → "), "{}: {message}", case.id);
        }

        if !case.stream {
            // The Anthropic shape: `type` from Anthropic's vocabulary, our class beside it.
            let mut body = say(false);
            body["max_tokens"] = json!(10);
            let resp = post("/v1/messages", body).await.unwrap();
            assert_eq!(resp.status().as_u16(), status, "{}", case.id);
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["class"], case.class, "{}: {v}", case.id);
            check_diagnosis("anthropic client", &case, &v["error"]["diagnosis"]);

            // /health probes live and shows the diagnosis on the unhealthy endpoint.
            let health: Value = http
                .get(format!("{}/health", gw.url()))
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(health["unhealthy_count"], 1, "{}: {health}", case.id);
            let bad = &health["unhealthy_endpoints"][0];
            assert_eq!(bad["model_id"], "tier-0");
            assert_eq!(bad["error_class"], case.class, "{}: {bad}", case.id);
            check_diagnosis("health", &case, &bad["diagnosis"]);
        }

        // doctor, as JSON.
        let opts = DoctorOptions { stream: case.stream, ..DoctorOptions::default() };
        let report = serde_json::to_value(doctor::run(&cfg, &env, &opts).await).unwrap();
        assert_eq!(report["exit_code"], 1, "{}: {report}", case.id);
        let d = &report["aliases"][0]["deployments"][0];
        let outcome = if case.stream { &d["stream"] } else { &d["result"] };
        assert_eq!(outcome["status"], "failed", "{}: {d}", case.id);
        assert_eq!(outcome["class"], case.class, "{}: {d}", case.id);
        check_diagnosis("doctor", &case, &outcome["diagnosis"]);
        gw.shutdown().await.unwrap();
    }
}
