//! `switchyard claude` and `switchyard codex` with the real binary against a gateway that
//! `start` runs in a temporary HOME and state directory. The tools are stub scripts on PATH
//! that print their arguments and environment (or, for the spend check, send one request as
//! the tool would), so what the launcher hands over is asserted exactly; the tools
//! themselves run in the SDK suite (tests/sdk/test_codex.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ops_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ops_support::*;

/// Prints each argument as `ARG:<arg>`, then each variable the launcher may set or remove as
/// `ENV:<name>=<value>` (newlines as `|`, `<unset>` when absent), and exits $STUB_EXIT.
const PRINTING_STUB: &str = r#"#!/bin/sh
for a in "$@"; do printf 'ARG:%s\n' "$a"; done
for v in ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN ANTHROPIC_API_KEY ANTHROPIC_MODEL \
    ANTHROPIC_DEFAULT_OPUS_MODEL ANTHROPIC_DEFAULT_SONNET_MODEL ANTHROPIC_DEFAULT_HAIKU_MODEL \
    ANTHROPIC_SMALL_FAST_MODEL ANTHROPIC_CUSTOM_HEADERS CLAUDE_CODE_USE_BEDROCK \
    ANTHROPIC_BEDROCK_BASE_URL CLAUDE_CODE_SKIP_BEDROCK_AUTH AWS_BEARER_TOKEN_BEDROCK AWS_REGION \
    SWITCHYARD_API_KEY USER_VAR; do
  eval "set=\${$v+x}"
  if [ -n "$set" ]; then
    eval "val=\$$v"
    printf 'ENV:%s=%s\n' "$v" "$(printf '%s' "$val" | tr '\n' '|')"
  else
    printf 'ENV:%s=<unset>\n' "$v"
  fi
done
exit "${STUB_EXIT:-0}"
"#;

/// What the stub printed.
struct Seen {
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Seen {
    fn parse(stdout: &str) -> Self {
        let args = stdout.lines().filter_map(|l| l.strip_prefix("ARG:")).map(String::from);
        let env = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("ENV:"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        Self { args: args.collect(), env: env.collect() }
    }

    fn var(&self, name: &str) -> &str {
        self.env.get(name).map(String::as_str).unwrap_or_else(|| panic!("{name} not printed"))
    }

    /// The `-c key=value` overrides given to Codex, in order.
    fn overrides(&self) -> Vec<&str> {
        self.args.windows(2).filter(|w| w[0] == "-c").map(|w| w[1].as_str()).collect()
    }
}

/// A directory holding `name` as an executable script.
fn stub_dir(ops: &Ops, name: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = ops.tmp.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &Path) -> String {
    format!("{}:/usr/bin:/bin", dir.display())
}

async fn launch(ops: &Ops, path: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = ops.cmd(args);
    cmd.env("PATH", path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || Out::from(cmd.output().unwrap())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_starts_on_the_running_gateway_with_its_key_tiers_and_a_session() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let url = ops.start(&config, &[]).await["url"].as_str().unwrap().to_owned();
    let bin = stub_dir(&ops, "claude", PRINTING_STUB);

    let out = launch(
        &ops,
        &path_with(&bin),
        &["claude", "--", "-p", "Say: WORKS", "--model", "cheap"],
        &[
            // A user's own Anthropic key and Bedrock mode would bypass the gateway.
            ("ANTHROPIC_API_KEY", "sk-ant-users-own"),
            ("CLAUDE_CODE_USE_BEDROCK", "1"),
            ("ANTHROPIC_CUSTOM_HEADERS", "x-team: search"),
            ("USER_VAR", "kept"),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    let seen = Seen::parse(&out.stdout);
    assert_eq!(seen.args, ["-p", "Say: WORKS", "--model", "cheap"], "ARGS pass through as given");
    assert_eq!(seen.var("ANTHROPIC_BASE_URL"), url);
    assert_eq!(seen.var("ANTHROPIC_AUTH_TOKEN"), MASTER, "the master key from the config");
    assert_eq!(seen.var("ANTHROPIC_API_KEY"), "<unset>");
    assert_eq!(seen.var("CLAUDE_CODE_USE_BEDROCK"), "<unset>");
    assert_eq!(seen.var("USER_VAR"), "kept", "the rest of the environment is inherited");
    assert_eq!(seen.var("ANTHROPIC_MODEL"), "balanced");
    assert_eq!(seen.var("ANTHROPIC_DEFAULT_OPUS_MODEL"), "frontier");
    assert_eq!(seen.var("ANTHROPIC_DEFAULT_SONNET_MODEL"), "balanced");
    assert_eq!(seen.var("ANTHROPIC_DEFAULT_HAIKU_MODEL"), "cheap");
    assert_eq!(seen.var("ANTHROPIC_SMALL_FAST_MODEL"), "cheap");
    let headers = seen.var("ANTHROPIC_CUSTOM_HEADERS");
    let (session, theirs) = headers.split_once('|').unwrap();
    assert!(session.starts_with("x-litellm-session-id: claude-"), "{headers}");
    assert_eq!(theirs, "x-team: search");
    assert!(!out.stderr.contains(MASTER), "switchyard never prints the key: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_in_bedrock_mode_gets_the_bedrock_routes_and_the_key_as_its_token() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let url = ops.start(&config, &[]).await["url"].as_str().unwrap().to_owned();
    let bin = stub_dir(&ops, "claude", PRINTING_STUB);
    let out = launch(
        &ops,
        &path_with(&bin),
        &["claude", "--bedrock", "--", "-p", "Say: WORKS"],
        &[("ANTHROPIC_API_KEY", "sk-ant-users-own"), ("AWS_REGION", "eu-west-1")],
    )
    .await;
    assert_eq!(out.code, 0, "{out}");
    let seen = Seen::parse(&out.stdout);
    assert_eq!(seen.var("CLAUDE_CODE_USE_BEDROCK"), "1");
    assert_eq!(seen.var("ANTHROPIC_BEDROCK_BASE_URL"), format!("{url}/bedrock"));
    assert_eq!(seen.var("CLAUDE_CODE_SKIP_BEDROCK_AUTH"), "1");
    assert_eq!(seen.var("AWS_BEARER_TOKEN_BEDROCK"), MASTER);
    assert_eq!(seen.var("AWS_REGION"), "eu-west-1", "the user's region is kept");
    assert_eq!(seen.var("ANTHROPIC_API_KEY"), "<unset>");
    assert_eq!(seen.var("ANTHROPIC_MODEL"), "balanced");
    assert!(!out.stderr.contains(MASTER), "switchyard never prints the key: {out}");

    let refused = launch(&ops, &path_with(&bin), &["codex", "--bedrock"], &[]).await;
    assert_eq!(refused.code, 2, "a usage error: {refused}");
    assert!(refused.stderr.contains("--bedrock is for `switchyard claude` only"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_gets_the_gateway_as_a_command_line_provider_and_its_exit_status_is_kept() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let url = ops.start(&config, &[]).await["url"].as_str().unwrap().to_owned();
    let bin = stub_dir(&ops, "codex", PRINTING_STUB);

    let out = launch(
        &ops,
        &path_with(&bin),
        &["codex", "--session", "refactor-auth", "--", "exec", "Say: WORKS"],
        &[("STUB_EXIT", "7")],
    )
    .await;
    assert_eq!(out.code, 7, "the tool replaced switchyard, so its status is the result: {out}");
    let seen = Seen::parse(&out.stdout);
    assert_eq!(
        seen.overrides(),
        [
            r#"model_providers.switchyard.name="Switchyard""#.to_owned(),
            format!(r#"model_providers.switchyard.base_url="{url}/v1""#),
            r#"model_providers.switchyard.env_key="SWITCHYARD_API_KEY""#.to_owned(),
            r#"model_providers.switchyard.wire_api="responses""#.to_owned(),
            r#"model_providers.switchyard.http_headers={"x-litellm-session-id"="refactor-auth"}"#
                .to_owned(),
            r#"model_provider="switchyard""#.to_owned(),
            r#"web_search="disabled""#.to_owned(),
            r#"model="balanced""#.to_owned(),
        ]
    );
    assert_eq!(seen.args[seen.args.len() - 2..], ["exec", "Say: WORKS"], "ARGS come last");
    assert_eq!(seen.var("SWITCHYARD_API_KEY"), MASTER);
    assert!(!seen.args.iter().any(|a| a.contains(MASTER)), "the key is never an argument");
    assert!(!out.stderr.contains(MASTER), "{out}");

    let bad = launch(&ops, &path_with(&bin), &["codex", "--session", "two words"], &[]).await;
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("not a session id"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_session_s_requests_are_reported_by_spend_by_session() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    ops.start(&config, &[]).await;
    // Sends what Claude Code sends: its key as a bearer token, its custom headers.
    let bin = stub_dir(
        &ops,
        "claude",
        r#"#!/bin/sh
exec curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' "$ANTHROPIC_BASE_URL/v1/messages" \
  -H "Authorization: Bearer $ANTHROPIC_AUTH_TOKEN" -H "$ANTHROPIC_CUSTOM_HEADERS" \
  -H 'content-type: application/json' \
  -d "{\"model\":\"$ANTHROPIC_MODEL\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"Say: WORKS\"}]}"
"#,
    );
    let out = launch(&ops, &path_with(&bin), &["claude", "--session", "launch-spend-1"], &[]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "200"), "{out}");

    // The ledger writes in the background; poll until the row is there.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let spend = ops
            .run(&["spend", "--config", config.to_str().unwrap(), "--by", "session", "--csv"])
            .await;
        if spend.code == 0 && spend.stdout.lines().any(|l| l.starts_with("launch-spend-1,1,0,")) {
            break;
        }
        assert!(Instant::now() < deadline, "the session never reached the ledger: {spend}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reason_not_to_start_is_said_with_its_fix_and_exit_code() {
    let ops = Ops::new();
    let empty = ops.tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();

    // The tool is not installed: checked first, whatever the gateway.
    let out = launch(&ops, &path_with(&empty), &["codex"], &[]).await;
    assert_eq!(out.code, 127, "{out}");
    assert!(out.stderr.contains("GW-08") && out.stderr.contains("npm install -g @openai/codex"));
    let out = launch(&ops, &path_with(&empty), &["claude"], &[]).await;
    assert_eq!(out.code, 127, "{out}");
    assert!(out.stderr.contains("npm install -g @anthropic-ai/claude-code"), "{out}");

    // Nothing answers at the URL: how to start one.
    let bin = stub_dir(&ops, "claude", PRINTING_STUB);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}");
    let out = launch(&ops, &path_with(&bin), &["claude", "--url", &url], &[]).await;
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("GW-04") && out.stderr.contains(&url), "{out}");
    assert!(out.stderr.contains("switchyard start") && out.stderr.contains("--url"), "{out}");
    assert!(!out.stdout.contains("ARG:") && !out.stdout.contains("ENV:"), "claude never ran");

    // A gateway that refuses the key: which key, and where the right one is.
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let url = ops.start(&config, &[]).await["url"].as_str().unwrap().to_owned();
    let wrong = "sk-wrong-key-1234567890";
    let out = launch(
        &ops,
        &path_with(&bin),
        &["claude", "--url", &url],
        &[("SWITCHYARD_MASTER_KEY", wrong)],
    )
    .await;
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("GW-01") && out.stderr.contains("$SWITCHYARD_MASTER_KEY"));
    assert!(!out.stderr.contains(wrong) && !out.stderr.contains(MASTER), "{out}");
}
