//! Routing on a paused clock, with scripted providers and no network: strategies,
//! failover, retries and backoff, cooldowns, every fallback kind, waiting for a cooldown
//! versus failing fast, the whole-request timeout, the streaming commit point, and a
//! concurrency run whose counters must add up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use switchyard::canonical::{ChatRequest, ChatResponse, ContentBlock, Message, Role, StreamEvent};
use switchyard::classify::{ErrorKind, UpstreamError};
use switchyard::config::MapEnv;
use switchyard::provider::{EventStream, MockProvider, Provider};
use switchyard::router::Router;
use tokio::time::Instant;

/// What one call to a scripted deployment does.
#[derive(Clone)]
enum Step {
    Answer,
    Fail(ErrorKind, Option<u64>),
    /// Wait this long, then do the next thing.
    Slow(u64, Box<Step>),
}

struct Scripted {
    answer: MockProvider,
    script: Mutex<VecDeque<Step>>,
    default: Step,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(id: &str, default: Step, script: Vec<Step>) -> Arc<Self> {
        Arc::new(Self {
            answer: MockProvider::new(format!("from {id}"), id.to_owned()),
            script: Mutex::new(script.into()),
            default,
            calls: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn next(&self) -> Step {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.script.lock().unwrap().pop_front().unwrap_or_else(|| self.default.clone())
    }
}

async fn play(step: Step) -> Result<(), UpstreamError> {
    let mut step = step;
    loop {
        match step {
            Step::Answer => return Ok(()),
            Step::Fail(kind, retry_after) => {
                let mut e = UpstreamError::new(kind, format!("scripted {}", kind.as_str()));
                e.retry_after = retry_after.map(Duration::from_secs);
                return Err(e);
            }
            Step::Slow(ms, next) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                step = *next;
            }
        }
    }
}

impl Provider for Scripted {
    fn send<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, UpstreamError>> {
        let step = self.next();
        Box::pin(async move {
            play(step).await?;
            self.answer.send(req).await
        })
    }

    fn stream<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<EventStream, UpstreamError>> {
        let step = self.next();
        Box::pin(async move {
            play(step).await?;
            self.answer.stream(req).await
        })
    }

    fn count_tokens<'a>(
        &'a self,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<u64, UpstreamError>> {
        self.answer.count_tokens(req)
    }
}

struct Harness {
    router: Router,
    providers: HashMap<String, Arc<Scripted>>,
}

impl Harness {
    /// `yaml` is a config whose deployments all have `model_info.id`s; `scripts` gives each
    /// id its default step and its first steps.
    fn new(yaml: &str, scripts: Vec<(&str, Step, Vec<Step>)>) -> Self {
        let cfg = support::config(yaml, &MapEnv::default());
        let providers: HashMap<String, Arc<Scripted>> = scripts
            .into_iter()
            .map(|(id, default, script)| (id.to_owned(), Scripted::new(id, default, script)))
            .collect();
        let router = Router::with_providers(&cfg, |d| {
            let p: Arc<dyn Provider> =
                providers.get(&d.id).unwrap_or_else(|| panic!("no script for {}", d.id)).clone();
            p
        });
        Self { router, providers }
    }

    fn calls(&self, id: &str) -> usize {
        self.providers[id].calls()
    }

    async fn ask(&self, model: &str) -> Result<String, (ErrorKind, usize)> {
        self.ask_with(request(model)).await
    }

    async fn ask_with(&self, req: ChatRequest) -> Result<String, (ErrorKind, usize)> {
        match self.router.send(&req).await {
            Ok(served) => Ok(served.route.deployment.id.clone()),
            Err(err) => Err((err.kind, err.attempts.len())),
        }
    }
}

fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![Message { role: Role::User, content: vec![ContentBlock::text("hi")] }],
        ..ChatRequest::default()
    }
}

/// A deployment entry with an id; extra `litellm_params` lines may follow.
fn dep(alias: &str, id: &str, extra: &str) -> String {
    let extra: String = extra.lines().map(|l| format!("      {}\n", l.trim())).collect();
    format!(
        "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: ok\n{extra}    model_info:\n      id: {id}\n"
    )
}

fn config(deployments: &[String], router_settings: &str) -> String {
    let settings: String =
        router_settings.lines().map(|l| format!("  {}\n", l.trim_start_matches("  "))).collect();
    if settings.is_empty() {
        return format!("model_list:\n{}", deployments.concat());
    }
    format!("model_list:\n{}router_settings:\n{settings}", deployments.concat())
}

const OK: Step = Step::Answer;

fn fail(kind: ErrorKind) -> Step {
    Step::Fail(kind, None)
}

#[tokio::test(start_paused = true)]
async fn simple_shuffle_follows_the_weights() {
    fastrand::seed(7);
    let yaml = config(
        &[
            dep("cheap", "a", "weight: 1"),
            dep("cheap", "b", "weight: 2"),
            dep("cheap", "c", "weight: 7"),
        ],
        "routing_strategy: simple-shuffle",
    );
    let h = Harness::new(&yaml, vec![("a", OK, vec![]), ("b", OK, vec![]), ("c", OK, vec![])]);
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..5000 {
        *counts.entry(h.ask("cheap").await.unwrap()).or_default() += 1;
    }
    let share = |id: &str| counts[id] as f64 / 5000.0;
    assert!((share("a") - 0.1).abs() < 0.03, "{counts:?}");
    assert!((share("b") - 0.2).abs() < 0.03, "{counts:?}");
    assert!((share("c") - 0.7).abs() < 0.03, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn simple_shuffle_weighs_by_rpm_when_no_weight_is_given() {
    fastrand::seed(11);
    let yaml = config(&[dep("cheap", "a", "rpm: 100000"), dep("cheap", "b", "rpm: 300000")], "");
    let h = Harness::new(&yaml, vec![("a", OK, vec![]), ("b", OK, vec![])]);
    for _ in 0..4000 {
        h.ask("cheap").await.unwrap();
    }
    let share_b = h.calls("b") as f64 / 4000.0;
    assert!((share_b - 0.75).abs() < 0.03, "b served {share_b}");
}

#[tokio::test(start_paused = true)]
async fn order_serves_the_lowest_tier_and_the_next_only_when_it_is_unavailable() {
    let yaml = config(
        &[dep("cheap", "backup", "order: 2"), dep("cheap", "primary", "order: 1")],
        "cooldown_time: 30",
    );
    let h = Harness::new(
        &yaml,
        vec![
            ("primary", OK, vec![OK, OK, fail(ErrorKind::CredentialsExpired)]),
            ("backup", OK, vec![]),
        ],
    );
    assert_eq!(h.ask("cheap").await.unwrap(), "primary");
    assert_eq!(h.ask("cheap").await.unwrap(), "primary");
    // The primary fails: the backup serves, and keeps serving while the primary cools.
    assert_eq!(h.ask("cheap").await.unwrap(), "backup");
    assert_eq!(h.ask("cheap").await.unwrap(), "backup");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(h.ask("cheap").await.unwrap(), "primary");
}

#[tokio::test(start_paused = true)]
async fn least_busy_avoids_a_deployment_with_a_request_in_flight() {
    let yaml =
        config(&[dep("cheap", "a", ""), dep("cheap", "b", "")], "routing_strategy: least-busy");
    let slow = Step::Slow(10_000, Box::new(OK));
    let h = Arc::new(Harness::new(&yaml, vec![("a", slow.clone(), vec![]), ("b", slow, vec![])]));
    let first = tokio::spawn({
        let h = h.clone();
        async move { h.ask("cheap").await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let second = h.ask("cheap").await.unwrap();
    assert_ne!(first.await.unwrap(), second);
}

#[tokio::test(start_paused = true)]
async fn latency_based_prefers_the_faster_deployment() {
    let yaml = config(
        &[dep("cheap", "fast", ""), dep("cheap", "slow", "")],
        "routing_strategy: latency-based-routing",
    );
    let h = Harness::new(
        &yaml,
        vec![
            ("fast", Step::Slow(10, Box::new(OK)), vec![]),
            ("slow", Step::Slow(900, Box::new(OK)), vec![]),
        ],
    );
    // Unmeasured deployments go first, so both get measured within two requests.
    h.ask("cheap").await.unwrap();
    h.ask("cheap").await.unwrap();
    for _ in 0..20 {
        assert_eq!(h.ask("cheap").await.unwrap(), "fast");
    }
}

#[tokio::test(start_paused = true)]
async fn usage_based_routing_respects_rpm_limits() {
    let yaml = config(
        &[dep("cheap", "small", "rpm: 2"), dep("cheap", "large", "rpm: 100")],
        "routing_strategy: usage-based-routing",
    );
    let h = Harness::new(&yaml, vec![("small", OK, vec![]), ("large", OK, vec![])]);
    for _ in 0..20 {
        h.ask("cheap").await.unwrap();
    }
    // The least-used deployment relative to its limit serves: small took one request,
    // and takes its second only once large is as loaded (half its limit).
    assert_eq!(h.calls("small"), 1);
    for _ in 20..102 {
        h.ask("cheap").await.unwrap();
    }
    assert_eq!((h.calls("small"), h.calls("large")), (2, 100), "neither exceeds its rpm");
    let err = h.router.send(&request("cheap")).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
    assert!(err.attempts[0].message.contains("rpm/tpm limit"), "{}", err.attempts[0].message);
    tokio::time::advance(Duration::from_secs(60)).await;
    h.ask("cheap").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_exponential_backoff() {
    let yaml = config(&[dep("cheap", "only", "")], "num_retries: 2");
    let h = Harness::new(
        &yaml,
        vec![("only", OK, vec![fail(ErrorKind::Overloaded), fail(ErrorKind::Overloaded)])],
    );
    let start = Instant::now();
    let served = h.router.send(&request("cheap")).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(h.calls("only"), 3);
    assert_eq!(served.route.retries, 2);
    assert_eq!(served.route.failed.len(), 2);
    // 0.25–0.5 s before the first retry, 0.5–1 s before the second.
    assert!(
        waited >= Duration::from_millis(750) && waited <= Duration::from_millis(1500),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_exactly() {
    let yaml = config(&[dep("cheap", "only", "")], "num_retries: 1");
    let h =
        Harness::new(&yaml, vec![("only", OK, vec![Step::Fail(ErrorKind::RateLimited, Some(7))])]);
    let start = Instant::now();
    assert_eq!(h.ask("cheap").await.unwrap(), "only");
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    assert_eq!(h.calls("only"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_deployment_with_num_retries_0_fails_at_once_even_with_retry_after() {
    let yaml = config(&[dep("cheap", "only", "num_retries: 0")], "num_retries: 3");
    let h =
        Harness::new(&yaml, vec![("only", Step::Fail(ErrorKind::RateLimited, Some(30)), vec![])]);
    let start = Instant::now();
    assert_eq!(h.ask("cheap").await, Err((ErrorKind::RateLimited, 1)));
    assert_eq!(start.elapsed(), Duration::ZERO, "no wait for a retry that will not happen");
}

#[tokio::test(start_paused = true)]
async fn errors_that_cannot_succeed_are_never_retried_on_the_same_deployment() {
    let yaml = config(&[dep("cheap", "only", "")], "num_retries: 5");
    for kind in [
        ErrorKind::CredentialsInvalid,
        ErrorKind::PermissionDenied,
        ErrorKind::ModelNotFound,
        ErrorKind::InvalidRequest,
    ] {
        let h = Harness::new(&yaml, vec![("only", fail(kind), vec![])]);
        assert_eq!(h.ask("cheap").await, Err((kind, 1)), "{kind:?}");
        assert_eq!(h.calls("only"), 1, "{kind:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_deployment_is_cooled_and_skipped_until_the_cooldown_ends() {
    let yaml = config(
        &[dep("cheap", "bedrock", "order: 1"), dep("cheap", "anthropic", "order: 2")],
        "cooldown_time: 60",
    );
    let h = Harness::new(
        &yaml,
        vec![("bedrock", fail(ErrorKind::CredentialsInvalid), vec![]), ("anthropic", OK, vec![])],
    );
    let served = h.router.send(&request("cheap")).await.unwrap();
    assert_eq!(served.route.deployment.id, "anthropic");
    assert_eq!(served.route.failed.len(), 1);
    assert_eq!(served.route.failed[0].deployment.id, "bedrock");
    assert_eq!(served.route.failed[0].error.kind, ErrorKind::CredentialsInvalid);
    // Straight to the Anthropic deployment while Bedrock cools.
    for _ in 0..3 {
        assert_eq!(h.ask("cheap").await.unwrap(), "anthropic");
    }
    assert_eq!(h.calls("bedrock"), 1);
    let bedrock = h.router.targets().find(|t| t.deployment.id == "bedrock").unwrap();
    assert!(bedrock.state.is_cooling(Instant::now()));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(h.ask("cheap").await.unwrap(), "anthropic");
    assert_eq!(h.calls("bedrock"), 2, "tried again once the cooldown ended");
}

#[tokio::test(start_paused = true)]
async fn transient_failures_cool_only_after_allowed_fails() {
    let yaml = config(
        &[dep("cheap", "a", "order: 1"), dep("cheap", "b", "order: 2")],
        "allowed_fails: 2\nnum_retries: 0",
    );
    let h =
        Harness::new(&yaml, vec![("a", fail(ErrorKind::Overloaded), vec![]), ("b", OK, vec![])]);
    for _ in 0..3 {
        assert_eq!(h.ask("cheap").await.unwrap(), "b");
    }
    assert_eq!(h.calls("a"), 3, "tried while within allowed_fails");
    assert_eq!(h.ask("cheap").await.unwrap(), "b");
    assert_eq!(h.calls("a"), 3, "cooled after the third failure in a minute");
}

#[tokio::test(start_paused = true)]
async fn disable_cooldowns_keeps_trying_a_failing_deployment() {
    let yaml = config(
        &[dep("cheap", "a", "order: 1"), dep("cheap", "b", "order: 2")],
        "disable_cooldowns: true",
    );
    let h = Harness::new(
        &yaml,
        vec![("a", fail(ErrorKind::CredentialsInvalid), vec![]), ("b", OK, vec![])],
    );
    for _ in 0..3 {
        assert_eq!(h.ask("cheap").await.unwrap(), "b");
    }
    assert_eq!(h.calls("a"), 3);
}

#[tokio::test(start_paused = true)]
async fn fallbacks_serve_from_the_next_group_in_order() {
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("balanced", "b1", ""), dep("frontier", "f1", "")],
        "num_retries: 0\nfallbacks: [{\"cheap\": [\"balanced\", \"frontier\"]}]",
    );
    let h = Harness::new(
        &yaml,
        vec![
            ("c1", fail(ErrorKind::Overloaded), vec![]),
            ("b1", fail(ErrorKind::CredentialsExpired), vec![]),
            ("f1", OK, vec![]),
        ],
    );
    let served = h.router.send(&request("cheap")).await.unwrap();
    assert_eq!(served.route.deployment.id, "f1");
    assert_eq!(served.route.fallbacks, 2);
    let tried: Vec<&str> = served.route.failed.iter().map(|a| a.deployment.id.as_str()).collect();
    assert_eq!(tried, ["c1", "b1"]);
}

#[tokio::test(start_paused = true)]
async fn context_window_overflow_goes_only_to_context_window_fallbacks() {
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("balanced", "b1", ""), dep("long", "l1", "")],
        "fallbacks: [{\"cheap\": [\"balanced\"]}]\ncontext_window_fallbacks: [{\"cheap\": [\"long\"]}]",
    );
    let h = Harness::new(
        &yaml,
        vec![
            ("c1", fail(ErrorKind::ContextWindow), vec![]),
            ("b1", OK, vec![]),
            ("l1", OK, vec![]),
        ],
    );
    assert_eq!(h.ask("cheap").await.unwrap(), "l1");
    assert_eq!(h.calls("b1"), 0);
}

#[tokio::test(start_paused = true)]
async fn content_policy_goes_only_to_content_policy_fallbacks() {
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("balanced", "b1", ""), dep("lenient", "p1", "")],
        "fallbacks: [{\"cheap\": [\"balanced\"]}]\ncontent_policy_fallbacks: [{\"cheap\": [\"lenient\"]}]",
    );
    let h = Harness::new(
        &yaml,
        vec![
            ("c1", fail(ErrorKind::ContentPolicy), vec![]),
            ("b1", OK, vec![]),
            ("p1", OK, vec![]),
        ],
    );
    assert_eq!(h.ask("cheap").await.unwrap(), "p1");
    // Without a content-policy fallback, the error reaches the client.
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("balanced", "b1", "")],
        "fallbacks: [{\"cheap\": [\"balanced\"]}]",
    );
    let h = Harness::new(
        &yaml,
        vec![("c1", fail(ErrorKind::ContentPolicy), vec![]), ("b1", OK, vec![])],
    );
    assert_eq!(h.ask("cheap").await, Err((ErrorKind::ContentPolicy, 1)));
}

#[tokio::test(start_paused = true)]
async fn an_invalid_request_never_falls_back() {
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("cheap", "c2", ""), dep("balanced", "b1", "")],
        "fallbacks: [{\"cheap\": [\"balanced\"]}]",
    );
    let h = Harness::new(
        &yaml,
        vec![
            ("c1", fail(ErrorKind::InvalidRequest), vec![]),
            ("c2", fail(ErrorKind::InvalidRequest), vec![]),
            ("b1", OK, vec![]),
        ],
    );
    assert_eq!(h.ask("cheap").await, Err((ErrorKind::InvalidRequest, 1)));
    assert_eq!(h.calls("b1"), 0);
}

#[tokio::test(start_paused = true)]
async fn default_fallbacks_apply_to_any_group_without_its_own() {
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("frontier", "f1", "")],
        "num_retries: 0\ndefault_fallbacks: [\"frontier\"]",
    );
    let h = Harness::new(
        &yaml,
        vec![("c1", fail(ErrorKind::UpstreamUnavailable), vec![]), ("f1", OK, vec![])],
    );
    assert_eq!(h.ask("cheap").await.unwrap(), "f1");
}

#[tokio::test(start_paused = true)]
async fn a_clients_own_fallbacks_and_mock_testing_flag_are_honoured() {
    let yaml = config(
        &[dep("cheap", "c1", ""), dep("balanced", "b1", ""), dep("frontier", "f1", "")],
        "fallbacks: [{\"cheap\": [\"balanced\"]}]",
    );
    let h = Harness::new(&yaml, vec![("c1", OK, vec![]), ("b1", OK, vec![]), ("f1", OK, vec![])]);
    let mut req = request("cheap");
    req.gateway.insert("mock_testing_fallbacks".into(), serde_json::json!(true));
    assert_eq!(h.ask_with(req.clone()).await.unwrap(), "b1", "the config's fallback");
    assert_eq!(h.calls("c1"), 0, "the requested group is failed on purpose");
    req.gateway.insert("fallbacks".into(), serde_json::json!(["frontier"]));
    assert_eq!(h.ask_with(req).await.unwrap(), "f1", "the client's list wins");
}

#[tokio::test(start_paused = true)]
async fn a_request_waits_for_a_cooldown_that_ends_within_its_timeout() {
    let yaml = config(&[dep("cheap", "only", "")], "cooldown_time: 5\ntimeout: 30\nnum_retries: 0");
    let h = Harness::new(&yaml, vec![("only", OK, vec![fail(ErrorKind::RateLimited)])]);
    assert_eq!(h.ask("cheap").await, Err((ErrorKind::RateLimited, 1)));
    let start = Instant::now();
    assert_eq!(h.ask("cheap").await.unwrap(), "only");
    assert_eq!(start.elapsed(), Duration::from_secs(5), "waited for the cooldown to end");
}

/// A refused or expired credential is still wrong when its cooldown ends: the request is
/// answered at once with the cause instead of waiting the cooldown out.
#[tokio::test(start_paused = true)]
async fn a_cooldown_for_bad_credentials_is_not_waited_for() {
    let yaml = config(&[dep("cheap", "only", "")], "cooldown_time: 5\ntimeout: 30");
    let h = Harness::new(&yaml, vec![("only", OK, vec![fail(ErrorKind::CredentialsExpired)])]);
    assert_eq!(h.ask("cheap").await, Err((ErrorKind::CredentialsExpired, 1)));
    let start = Instant::now();
    assert_eq!(h.ask("cheap").await, Err((ErrorKind::UpstreamUnavailable, 1)));
    assert_eq!(start.elapsed(), Duration::ZERO, "answered at once");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(h.ask("cheap").await.unwrap(), "only", "tried again once the cooldown ends");
}

/// Ollama is down: the refused connection is not retried, the deployment cools, and while it
/// cools the fallback serves at once instead of the request waiting out the cooldown.
#[tokio::test(start_paused = true)]
async fn a_local_server_that_is_down_falls_over_at_once_and_cools() {
    let yaml = config(
        &[dep("free", "ollama", ""), dep("cheap", "haiku", "")],
        "num_retries: 3
cooldown_time: 5
timeout: 30
fallbacks: [{\"free\": [\"cheap\"]}]",
    );
    let h = Harness::new(
        &yaml,
        vec![("ollama", fail(ErrorKind::ServerDown), vec![]), ("haiku", OK, vec![])],
    );
    let start = Instant::now();
    let served = h.router.send(&request("free")).await.unwrap();
    assert_eq!(served.route.deployment.id, "haiku");
    assert_eq!((served.route.retries, served.route.fallbacks), (0, 1));
    assert_eq!(h.calls("ollama"), 1, "a server that is down is not retried");
    assert_eq!(start.elapsed(), Duration::ZERO, "no backoff before the fallback");
    let ollama = h.router.targets().find(|t| t.deployment.id == "ollama").unwrap();
    assert!(ollama.state.is_cooling(Instant::now()));
    // While it cools: the fallback at once, no wait for the cooldown to end.
    assert_eq!(h.ask("free").await.unwrap(), "haiku");
    assert_eq!(start.elapsed(), Duration::ZERO, "did not wait for the cooldown");
    assert_eq!(h.calls("ollama"), 1);
    // Once the cooldown is over it is tried again.
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(h.ask("free").await.unwrap(), "haiku");
    assert_eq!(h.calls("ollama"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_request_fails_fast_with_gw05_when_the_cooldown_outlasts_its_timeout() {
    let yaml = config(&[dep("cheap", "only", "")], "cooldown_time: 60\ntimeout: 10");
    let h = Harness::new(&yaml, vec![("only", OK, vec![fail(ErrorKind::CredentialsExpired)])]);
    h.ask("cheap").await.unwrap_err();
    let start = Instant::now();
    let err = h.router.send(&request("cheap")).await.err().unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "failed fast");
    assert_eq!(err.kind, ErrorKind::UpstreamUnavailable);
    let gw05 = &err.attempts[0];
    assert_eq!(gw05.diagnosis.as_ref().unwrap().id, "GW-05");
    assert!(gw05.message.contains("only"), "{}", gw05.message);
    assert!(gw05.message.contains("credentials_expired"), "{}", gw05.message);
    assert!(gw05.message.contains("cooling for 60s more"), "{}", gw05.message);
}

#[tokio::test(start_paused = true)]
async fn the_whole_request_timeout_fires_and_says_so() {
    let yaml = config(&[dep("cheap", "only", "")], "timeout: 2");
    let h = Harness::new(&yaml, vec![("only", Step::Slow(60_000, Box::new(OK)), vec![])]);
    let start = Instant::now();
    let err = h.router.send(&request("cheap")).await.err().unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(err.diagnosis.as_ref().unwrap().id, "NET-03");
    assert!(err.message.contains("whole-request timeout of 2s"), "{}", err.message);
}

#[tokio::test(start_paused = true)]
async fn a_stream_falls_back_until_its_first_event_and_reports_failures_after() {
    let yaml = config(&[dep("cheap", "a", "order: 1"), dep("cheap", "b", "order: 2")], "");
    let h =
        Harness::new(&yaml, vec![("a", fail(ErrorKind::Overloaded), vec![]), ("b", OK, vec![])]);
    let served = h.router.stream(&request("cheap")).await.unwrap();
    assert_eq!(served.route.deployment.id, "b");
    let events: Vec<_> = served.value.collect().await;
    assert!(events.iter().all(Result::is_ok));
    assert!(matches!(events.last(), Some(Ok(StreamEvent::Stop))));
    let b = h.router.targets().find(|t| t.deployment.id == "b").unwrap();
    assert_eq!(b.state.in_flight(), 0, "the stream released its deployment when it ended");
}

#[tokio::test(start_paused = true)]
async fn thousands_of_concurrent_requests_get_exactly_one_answer_each() {
    fastrand::seed(3);
    let yaml = config(
        &[dep("cheap", "a", ""), dep("cheap", "b", ""), dep("cheap", "c", "")],
        "num_retries: 1\ndisable_cooldowns: true",
    );
    // a fails every third call, b every other, c never; each call takes 1–3 ms.
    let flaky = |every: usize, n: usize| -> Vec<Step> {
        (0..n)
            .map(|i| {
                if i % every == 0 {
                    fail(ErrorKind::Overloaded)
                } else {
                    Step::Slow(1 + (i % 3) as u64, Box::new(OK))
                }
            })
            .collect()
    };
    let h = Arc::new(Harness::new(
        &yaml,
        vec![
            ("a", OK, flaky(3, 3000)),
            ("b", OK, flaky(2, 3000)),
            ("c", Step::Slow(2, Box::new(OK)), vec![]),
        ],
    ));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed_attempts, mut errors) = (0usize, 0usize, 0usize);
            for _ in 0..40 {
                match h.router.send(&request("cheap")).await {
                    Ok(served) => {
                        ok += 1;
                        failed_attempts += served.route.failed.len();
                    }
                    Err(err) => {
                        errors += 1;
                        failed_attempts += err.attempts.len();
                    }
                }
            }
            (ok, failed_attempts, errors)
        }));
    }
    let (mut ok, mut failed_attempts, mut errors) = (0, 0, 0);
    for t in tasks {
        let (o, f, e) = t.await.unwrap();
        ok += o;
        failed_attempts += f;
        errors += e;
    }
    assert_eq!(ok + errors, 2000, "every request answered exactly once");
    assert_eq!(errors, 0, "c never fails, so every request is served");
    let calls = h.calls("a") + h.calls("b") + h.calls("c");
    assert_eq!(calls, ok + failed_attempts, "every upstream call is one attempt in a report");
    for t in h.router.targets() {
        assert_eq!(t.state.in_flight(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_state_of_unchanged_deployments_only() {
    let before =
        config(&[dep("cheap", "same", ""), dep("cheap", "edited", "")], "cooldown_time: 60");
    let h = Harness::new(
        &before,
        vec![
            ("same", fail(ErrorKind::CredentialsInvalid), vec![]),
            ("edited", fail(ErrorKind::CredentialsInvalid), vec![]),
        ],
    );
    h.ask("cheap").await.unwrap_err();
    let after = config(
        &[dep("cheap", "same", ""), dep("cheap", "edited", "weight: 3")],
        "cooldown_time: 60",
    );
    let cfg = support::config(&after, &MapEnv::default());
    let reloaded = Router::reloaded(&cfg, &h.router);
    let cooling = |id: &str| {
        reloaded.targets().find(|t| t.deployment.id == id).unwrap().state.is_cooling(Instant::now())
    };
    assert!(cooling("same"), "an unchanged deployment stays cooled across a reload");
    assert!(!cooling("edited"), "a changed deployment starts fresh");
}
