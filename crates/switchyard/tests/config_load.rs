//! Loading LiteLLM configs as a user would: a realistic multi-tier file, one test per
//! catalog entry CFG-01..CFG-06 asserting where the problem is and what it says, env
//! files, and the config search order. The environment is always a `MapEnv`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard::config::{
    self, BedrockApi, Config, ConfigErrors, ConfigOrigin, ConfigProblem, CredentialSource,
    EnvOrigin, LoadOptions, MapEnv, OpenAiFlavor, ProviderKind, RoutingStrategy, SslVerify,
    ValueSource,
};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/litellm_tiers.yaml");

fn load_str(text: &str, env: &MapEnv) -> Result<Config, ConfigErrors> {
    config::load_from_str(text, Path::new("/etc/switchyard/config.yaml"), env)
}

fn ok(text: &str, env: &MapEnv) -> Config {
    match load_str(text, env) {
        Ok(c) => c,
        Err(e) => panic!("expected the config to load, got:\n{e}"),
    }
}

fn problems(text: &str, env: &MapEnv) -> Vec<ConfigProblem> {
    match load_str(text, env) {
        Ok(_) => panic!("expected the config to be rejected"),
        Err(e) => e.problems,
    }
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

fn at(p: &ConfigProblem) -> (usize, usize) {
    let l = p.location.as_ref().expect("problem has a location");
    (l.line, l.column)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

// ---------------------------------------------------------------------------------------
// The realistic config.

fn load_fixture(dir: &Path) -> (Config, PathBuf) {
    let env_file = write(
        dir,
        "team.env",
        "# keys for the gateway\nexport ANTHROPIC_API_KEY='sk-ant-api03-fixture-key-0123456789'\n",
    );
    let env = MapEnv::new([("LITELLM_MASTER_KEY", "sk-master-fixture-123456")]);
    let opts = LoadOptions { config_path: Some(FIXTURE.into()), env_files: vec![env_file.clone()] };
    match config::load(&opts, &env) {
        Ok(c) => (c, env_file),
        Err(e) => panic!("fixture should load:\n{e}"),
    }
}

#[test]
fn a_realistic_litellm_config_loads_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, env_file) = load_fixture(dir.path());

    assert_eq!(cfg.origin, ConfigOrigin::Flag);
    assert_eq!(cfg.env_files, vec![env_file.clone()]);
    assert_eq!(cfg.aliases().collect::<Vec<_>>(), vec!["cheap", "balanced", "frontier", "free"]);

    let cheap = cfg.group("cheap").unwrap();
    assert_eq!(cheap.deployments.len(), 2);
    let bedrock = &cheap.deployments[0];
    assert_eq!(bedrock.id, "cheap-bedrock");
    assert_eq!(bedrock.provider, ProviderKind::Bedrock(BedrockApi::Auto));
    assert_eq!(bedrock.model, "us.anthropic.claude-3-5-haiku-20241022-v1:0");
    assert_eq!(bedrock.aws.region_name.as_deref(), Some("us-east-1"));
    assert_eq!(bedrock.aws.profile_name.as_deref(), Some("cc"));
    assert!(
        matches!(&bedrock.credentials, CredentialSource::AwsProfile { name, .. } if name == "cc")
    );
    assert_eq!(bedrock.rpm, Some(100));
    assert_eq!(bedrock.timeout, Some(Duration::from_secs(30)));

    let anthropic = &cheap.deployments[1];
    assert_eq!(anthropic.provider, ProviderKind::Anthropic);
    assert_eq!(anthropic.model, "claude-3-5-haiku-20241022");
    assert_eq!(anthropic.rpm, Some(50), "rpm written as a string is a number");
    let key = anthropic.api_key.as_ref().unwrap();
    assert_eq!(key.value.expose(), "sk-ant-api03-fixture-key-0123456789");
    match &key.source {
        ValueSource::ConfigEnvRef { var, origin, at } => {
            assert_eq!(var, "ANTHROPIC_API_KEY");
            assert_eq!(origin, &EnvOrigin::File { path: env_file.clone(), line: 2 });
            assert_eq!((at.line, at.column), (17, 16));
        }
        other => panic!("api_key should come from os.environ/, got {other:?}"),
    }

    let balanced = cfg.group("balanced").unwrap();
    assert_eq!(balanced.deployments[0].stream_timeout, Some(Duration::from_secs_f64(120.5)));
    assert_eq!(balanced.deployments[1].costs.output_cost_per_token, Some(0.000015));
    assert_eq!(
        cfg.group("frontier").unwrap().deployments[0].aws.region_name.as_deref(),
        Some("us-west-2")
    );

    let free = &cfg.group("free").unwrap().deployments[0];
    assert_eq!(free.provider, ProviderKind::OpenAi(OpenAiFlavor::OllamaChat));
    assert_eq!(free.model, "llama3.1:8b");
    assert_eq!(free.api_base.as_deref(), Some("http://localhost:11434"));
    assert_eq!(free.tags, vec!["local"]);
    assert_eq!(free.credentials, CredentialSource::NoneNeeded);
    assert_eq!(free.ssl_verify, SslVerify::System);

    let r = &cfg.router;
    assert_eq!(r.routing_strategy, RoutingStrategy::SimpleShuffle);
    assert_eq!((r.num_retries, r.allowed_fails), (3, 2));
    assert_eq!(r.cooldown_time, Duration::from_secs(30));
    assert_eq!(r.timeout, Some(Duration::from_secs(600)));
    assert_eq!(r.fallbacks.get("free"), Some(&vec!["cheap".to_owned()]));
    assert_eq!(r.fallbacks.get("cheap"), Some(&vec!["balanced".to_owned()]));
    assert_eq!(r.context_window_fallbacks.get("balanced"), Some(&vec!["frontier".to_owned()]));

    let g = &cfg.general;
    let master = g.master_key.as_ref().unwrap();
    assert_eq!(master.value.expose(), "sk-master-fixture-123456");
    assert!(
        matches!(&master.source, ValueSource::ConfigEnvRef { var, origin: EnvOrigin::Process, .. } if var == "LITELLM_MASTER_KEY")
    );
    assert_eq!(g.health_check_interval, Duration::from_secs(120));
    assert!(g.background_health_checks);
    assert!(g.drop_params);
    assert_eq!(g.request_timeout, Some(Duration::from_secs(300)));
    assert_eq!(g.max_request_body_bytes, 32 * 1024 * 1024);

    let frontier_budget = &cfg.budgets.model_max_budget["frontier"];
    assert_eq!(
        (frontier_budget.budget_limit, frontier_budget.time_period.as_deref()),
        (50.0, Some("30d"))
    );
    assert_eq!(cfg.budgets.provider_budget_config["anthropic"].budget_limit, 100.0);

    // The response cache is read: Redis on localhost, its unset REDIS_PASSWORD a warning.
    match &g.cache.as_ref().unwrap().store {
        config::response_cache::CacheStore::Redis { place, .. } => {
            assert_eq!(place, "localhost:6379")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(warning(&cfg, "litellm_settings.cache_params.password").id, "CFG-01");
    // Callbacks and the database are LiteLLM features not implemented: one warning
    // each, with the key's own position — and their unset variables (DATABASE_URL) do not
    // stop the gateway.
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    for (key, needle) in [
        ("litellm_settings.success_callback", "success_callback:"),
        ("litellm_settings.callbacks", "callbacks: [\"prometheus\"]"),
    ] {
        let found: Vec<_> = cfg.warnings.iter().filter(|w| w.key == key).collect();
        assert_eq!(found.len(), 1, "one warning for {key}: {:?}", cfg.warnings);
        let w = found[0];
        assert_eq!(w.id, "CFG-06");
        assert!(w.message.contains("ignored"), "{}", w.message);
        let l = w.location.as_ref().unwrap();
        assert_eq!((l.line, l.column), pos(&text, needle), "{key}");
    }
    // `database_url` is read (the spend ledger); its unset variable is a CFG-01 warning and
    // the ledger stays in SQLite.
    let db: Vec<_> =
        cfg.warnings.iter().filter(|w| w.key == "general_settings.database_url").collect();
    assert_eq!(db.iter().map(|w| w.id).collect::<Vec<_>>(), ["CFG-01"], "{db:?}");
    assert!(g.database_url.is_none());
    assert!(
        !cfg.warnings.iter().any(|w| w.key == "model_max_budget"),
        "model_max_budget is enforced: no warning"
    );
}

#[test]
fn derived_ids_are_the_same_on_every_load() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = load_fixture(dir.path());
    let (b, _) = load_fixture(dir.path());
    let ids = |c: &Config| c.deployments().map(|d| d.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    let all = ids(&a);
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "ids are distinct: {all:?}");
}

#[test]
fn config_check_names_credential_sources_but_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, env_file) = load_fixture(dir.path());
    let text = config::render_check(&cfg);
    assert!(text.contains(FIXTURE), "{text}");
    assert!(text.contains("from --config"), "{text}");
    assert!(text.contains("aws profile cc"), "{text}");
    let expected = format!("api_key from ANTHROPIC_API_KEY (env file {}:2)", env_file.display());
    assert!(text.contains(&expected), "missing `{expected}` in:\n{text}");
    assert!(text.contains("us.anthropic.claude-sonnet-4-20250514-v1:0"), "{text}");
    assert!(text.contains("us-west-2"), "{text}");
    assert!(text.contains("http://localhost:11434"), "{text}");
    assert!(text.contains("litellm_settings.cache"), "warnings are listed:\n{text}");
    assert!(text.contains("free → cheap"), "{text}");
    assert!(!text.contains("fixture-key-0123456789"), "secret leaked:\n{text}");
    assert!(!text.contains("sk-master-fixture-123456"), "secret leaked:\n{text}");

    let json = config::check_json(&cfg);
    let json_text = json.to_string();
    assert!(!json_text.contains("fixture-key-0123456789"), "secret leaked: {json_text}");
    let cheap = &json["aliases"][0];
    assert_eq!(cheap["alias"], "cheap");
    assert_eq!(cheap["deployments"][0]["credentials"]["kind"], "aws_profile");
    assert_eq!(cheap["deployments"][1]["credentials"]["variable"], "ANTHROPIC_API_KEY");
    assert_eq!(cheap["deployments"][1]["credentials"]["safe_prefix"], "sk-ant-a…");
}

#[test]
fn check_shows_mock_bedrock_keys_and_the_default_chain() {
    let text = "\
model_list:
  - model_name: quick
    litellm_params:
      model: claude-3-5-haiku-latest
      mock_response: WORKS
  - model_name: keyed
    litellm_params:
      model: bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0
  - model_name: chain
    litellm_params:
      model: bedrock/converse/meta.llama3-70b-instruct-v1:0
      aws_region_name: eu-west-1
";
    let env =
        MapEnv::new([("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-abcdefghijklmnopqrstuvwxyz")]);
    let cfg = ok(text, &env);
    let out = config::render_check(&cfg);
    assert!(out.contains("mock_response (no upstream)"), "{out}");
    assert!(
        out.contains("Bedrock API key from AWS_BEARER_TOKEN_BEDROCK (process environment)"),
        "{out}"
    );
    assert!(!out.contains("abcdefghijklmnopqrstuvwxyz"), "{out}");
    let keyed = &cfg.group("keyed").unwrap().deployments[0];
    assert!(matches!(keyed.credentials, CredentialSource::BedrockApiKey(ValueSource::Env { .. })));

    let cfg = ok(text, &MapEnv::default());
    let out = config::render_check(&cfg);
    assert!(out.contains("default AWS chain"), "{out}");
    let chain = &cfg.group("chain").unwrap().deployments[0];
    assert_eq!(chain.provider, ProviderKind::Bedrock(BedrockApi::Converse));
}

// ---------------------------------------------------------------------------------------
// One test per catalog entry.

const UNSET_KEY: &str = "\
model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-3-5-haiku-20241022
      api_key: os.environ/MISSING_KEY
";

/// The warning about `key` (there is exactly one).
fn warning<'a>(cfg: &'a Config, key: &str) -> &'a config::ConfigWarning {
    let found: Vec<_> = cfg.warnings.iter().filter(|w| w.key == key).collect();
    assert_eq!(found.len(), 1, "one warning for {key}: {:#?}", cfg.warnings);
    found[0]
}

fn warning_at(w: &config::ConfigWarning) -> (usize, usize) {
    let l = w.location.as_ref().expect("warning has a location");
    (l.line, l.column)
}

#[test]
fn cfg01_an_unset_variable_names_itself_the_alias_the_place_and_the_env_files() {
    // LiteLLM starts with the variable unset, and so does Switchyard: a warning now, and
    // the same problem as the answer to every request the deployment gets.
    let cfg = ok(UNSET_KEY, &MapEnv::default());
    let w = warning(&cfg, "model_list[0].litellm_params.api_key");
    assert_eq!(w.id, "CFG-01");
    assert_eq!(warning_at(w), (5, 16));
    assert_eq!(w.location.as_ref().unwrap().file, Path::new("/etc/switchyard/config.yaml"));
    for part in [
        "MISSING_KEY is not set",
        "alias `cheap`",
        "No env files were loaded",
        "every request to this deployment fails",
        "export MISSING_KEY=",
        "--env-file",
        "environment_variables",
    ] {
        assert!(w.message.contains(part), "`{part}` not in {}", w.message);
    }
    let d = &cfg.group("cheap").unwrap().deployments[0];
    let u = d.unservable.as_ref().expect("the deployment is not served");
    assert_eq!(u.id, "CFG-01");
    assert!(u.cause.contains("MISSING_KEY is not set"), "{}", u.cause);
    assert!(u.remedy.contains("export MISSING_KEY="), "{}", u.remedy);
    let check = config::render_check(&cfg);
    assert!(check.contains("NOT SERVED (CFG-01): MISSING_KEY is not set"), "{check}");
}

#[test]
fn cfg01_an_unset_master_key_stops_the_gateway() {
    // The one reference that is fatal: LiteLLM would run without auth.
    let text = "general_settings:\n  master_key: os.environ/GATEWAY_KEY\n";
    let ps = problems(text, &MapEnv::default());
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!((ps[0].id, ps[0].key.as_str()), ("CFG-01", "general_settings.master_key"));
    assert!(ps[0].message.contains("GATEWAY_KEY is not set"), "{}", ps[0].message);
    // Any other setting read from an unset variable is left unset, with a warning.
    let text = "router_settings:\n  timeout: os.environ/ROUTER_TIMEOUT\n";
    let cfg = ok(text, &MapEnv::default());
    assert_eq!(cfg.router.timeout, None);
    let w = warning(&cfg, "router_settings.timeout");
    assert_eq!(w.id, "CFG-01");
    assert!(w.message.contains("left unset"), "{}", w.message);
    // So is a deployment setting that does not decide where the request goes or who it
    // is sent as; the deployment still serves.
    let text = "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude-x, api_key: sk-ant-x, rpm: os.environ/RPM}\n";
    let cfg = ok(text, &MapEnv::default());
    let d = &cfg.group("a").unwrap().deployments[0];
    assert_eq!((d.rpm, d.unservable.as_ref()), (None, None));
    assert!(warning(&cfg, "model_list[0].litellm_params.rpm").message.contains("left unset"));
}

#[test]
fn cfg01_lists_the_env_files_that_were_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "config.yaml", UNSET_KEY);
    let a = write(dir.path(), "a.env", "OTHER=1\n");
    let b = write(dir.path(), "b.env", "ANOTHER=2\n");
    let env = MapEnv::new([("SWITCHYARD_ENV_FILE", b.display().to_string())]);
    let opts = LoadOptions { config_path: Some(cfg), env_files: vec![a.clone()] };
    let cfg = config::load(&opts, &env).unwrap();
    let w = warning(&cfg, "model_list[0].litellm_params.api_key");
    assert_eq!(w.id, "CFG-01");
    let expected = format!("Env files loaded: {}, {}.", a.display(), b.display());
    assert!(w.message.contains(&expected), "{}", w.message);
}

#[test]
fn cfg02_a_variable_set_but_empty_says_so_and_where_it_was_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        write(dir.path(), "config.yaml", &UNSET_KEY.replace("MISSING_KEY", "ANTHROPIC_API_KEY"));
    let env_file = write(dir.path(), "dev.env", "# dev\nexport ANTHROPIC_API_KEY=''\n");
    let opts = LoadOptions { config_path: Some(cfg.clone()), env_files: vec![env_file.clone()] };
    let loaded = config::load(&opts, &MapEnv::default()).unwrap();
    let w = warning(&loaded, "model_list[0].litellm_params.api_key");
    assert_eq!(w.id, "CFG-02");
    assert_eq!(warning_at(w), (5, 16));
    assert_eq!(w.location.as_ref().unwrap().file, cfg);
    assert!(w.message.contains("ANTHROPIC_API_KEY is set but empty"), "{}", w.message);
    let where_set = format!("{}:2", env_file.display());
    assert!(w.message.contains(&format!("set in {where_set}")), "{}", w.message);
    assert!(w.message.contains(&format!("a value at {where_set}")), "{}", w.message);
    let u = loaded.deployments().next().unwrap().unservable.clone().unwrap();
    assert_eq!(u.id, "CFG-02");

    // Empty in the process environment: that wins over files, and the fix says so.
    let env = MapEnv::new([("ANTHROPIC_API_KEY", "")]);
    let loaded = config::load(&opts, &env).unwrap();
    let w = warning(&loaded, "model_list[0].litellm_params.api_key");
    assert_eq!(w.id, "CFG-02");
    assert!(w.message.contains("set in the process environment"), "{}", w.message);
    assert!(w.message.contains("unset ANTHROPIC_API_KEY"), "{}", w.message);
}

#[test]
fn cfg03_a_yaml_syntax_error_has_line_column_and_the_parser_message() {
    let text = "model_list:\n  - model_name: cheap\n    litellm_params:\n      model: a: b\n";
    let err = load_str(text, &MapEnv::default()).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let p = &err.problems[0];
    assert_eq!(p.id, "CFG-03");
    assert_eq!(at(p), (4, 15));
    assert!(p.message.contains("YAML syntax error"), "{}", p.message);
    assert!(p.message.contains("mapping values are not allowed"), "{}", p.message);
    assert!(p.remedy.contains("line 4 column 15"), "{}", p.remedy);
    let shown = err.to_string();
    assert!(shown.contains("/etc/switchyard/config.yaml:4:15: CFG-03"), "{shown}");
    assert!(shown.contains("\n    fix: "), "{shown}");

    let tabs = "model_list:\n\t- model_name: x\n";
    let p = &problems(tabs, &MapEnv::default())[0];
    assert_eq!((p.id, at(p).0), ("CFG-03", 2));
}

#[test]
fn cfg04_an_unknown_provider_prefix_loads_with_a_warning_showing_the_value_and_the_accepted_prefixes()
 {
    let text = "\
model_list:
  - model_name: gpt
    litellm_params:
      model: azure/gpt-4o
";
    let cfg = ok(text, &MapEnv::default());
    let w = warning(&cfg, "model_list[0].litellm_params.model");
    assert_eq!(w.id, "CFG-04");
    assert_eq!(warning_at(w), (4, 14));
    assert!(w.message.contains("azure/gpt-4o"), "{}", w.message);
    assert!(w.message.contains("every request to it fails"), "{}", w.message);
    for prefix in
        ["anthropic/", "bedrock/", "bedrock/converse/", "openai/", "ollama/", "hosted_vllm/"]
    {
        assert!(w.message.contains(prefix), "{prefix} missing from {}", w.message);
    }
    let d = &cfg.group("gpt").unwrap().deployments[0];
    assert_eq!(d.provider, ProviderKind::Unsupported);
    assert_eq!(d.unservable.as_ref().unwrap().id, "CFG-04");
    let check = config::render_check(&cfg);
    assert!(check.contains("azure (unsupported)"), "{check}");
    assert!(check.contains("NOT SERVED (CFG-04)"), "{check}");
}

#[test]
fn cfg04_unprefixed_names_are_inferred_or_warned_about_and_so_are_malformed_ones() {
    let text = "\
model_list:
  - model_name: a
    litellm_params: {model: claude-sonnet-4-5}
  - model_name: b
    litellm_params: {model: gpt-4o-mini, api_key: sk-test-123456789012}
  - model_name: c
    litellm_params: {model: llama3}
  - model_name: d
    litellm_params: {model: bedrock/llama/meta.llama3-70b}
  - model_name: e
    litellm_params: {model: llama3, mock_response: hi}
";
    let cfg = ok(text, &MapEnv::default());
    let c = warning(&cfg, "model_list[2].litellm_params.model");
    assert_eq!(c.id, "CFG-04");
    assert!(
        c.message.contains("llama3") && c.message.contains("no provider prefix"),
        "{}",
        c.message
    );
    assert!(c.message.contains("ollama/llama3"), "{}", c.message);
    let d = warning(&cfg, "model_list[3].litellm_params.model");
    assert!(d.message.contains("bedrock/converse/meta.llama3-70b"), "{}", d.message);
    let e = &cfg.group("e").unwrap().deployments[0];
    assert_eq!(e.unservable, None, "a mock_response calls no provider");

    // Malformed too: LiteLLM starts, so the deployment loads and answers with the error.
    let cfg = ok(
        "model_list:\n  - model_name: a\n    litellm_params: {model: 'anthropic/claude sonnet'}\n  - model_name: b\n    litellm_params: {model: anthropic/}\n",
        &MapEnv::default(),
    );
    let w = warning(&cfg, "model_list[0].litellm_params.model");
    assert!(w.message.contains("whitespace"), "{}", w.message);
    let w = warning(&cfg, "model_list[1].litellm_params.model");
    assert!(w.message.contains("names no model id"), "{}", w.message);
}

#[tokio::test]
async fn a_deployment_that_cannot_be_called_answers_with_its_configuration_error() {
    let text = "\
model_list:
  - model_name: gpt
    litellm_params: {model: azure/gpt-4o, api_key: os.environ/AZURE_API_KEY}
  - model_name: keyed
    litellm_params: {model: anthropic/claude-haiku-4-5, api_key: os.environ/MISSING_KEY}
  - model_name: both
    litellm_params: {model: vertex_ai/gemini-2.5-pro}
  - model_name: both
    litellm_params: {model: claude-haiku-4-5, mock_response: served by the mock}
";
    let cfg = ok(text, &MapEnv::default());
    let gw = switchyard::server::start(
        "127.0.0.1:0".parse().unwrap(),
        switchyard::server::Runtime::new(cfg),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let chat = |model: &'static str| {
        let req = client.post(format!("{}/v1/chat/completions", gw.url())).json(
            &serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        );
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = chat("gpt").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "configuration", "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "CFG-04", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`azure/` is not supported"), "{message}");
    assert!(message.contains("Fix: use one of the accepted prefixes"), "{message}");
    let (status, body) = chat("keyed").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["diagnosis"]["id"], "CFG-01", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("MISSING_KEY is not set"), "{message}");
    assert!(message.contains("export MISSING_KEY="), "{message}");
    // Another deployment of the alias serves the request.
    let (status, body) = chat("both").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "served by the mock");
}

#[test]
fn cfg05_a_fallback_to_an_undefined_alias_is_a_warning_naming_it_and_the_aliases_that_exist() {
    let text = "\
model_list:
  - model_name: cheap
    litellm_params: {model: claude-3-5-haiku-latest, mock_response: ok}
  - model_name: free
    litellm_params: {model: ollama/llama3}
router_settings:
  fallbacks:
    - free: [cheep]
";
    let cfg = ok(text, &MapEnv::default());
    let w = warning(&cfg, "router_settings.fallbacks[0].free[0]");
    assert_eq!(w.id, "CFG-05");
    assert_eq!(warning_at(w), pos(text, "cheep"));
    assert!(
        w.message.contains("`cheep`") && w.message.contains("not a model_name"),
        "{}",
        w.message
    );
    assert!(w.message.contains("cheap, free"), "{}", w.message);
    assert!(w.message.contains("did you mean `cheap`?"), "{}", w.message);
}

#[test]
fn cfg05_budgets_and_fallback_sources_are_checked_and_ids_are_valid_targets() {
    let text = "\
model_list:
  - model_name: cheap
    litellm_params: {model: claude-3-5-haiku-latest, mock_response: ok}
    model_info: {id: cheap-1}
  - model_name: balanced
    litellm_params: {model: claude-sonnet-4-5, mock_response: ok}
litellm_settings:
  fallbacks: [{balanced: [cheap-1]}]
  context_window_fallbacks: [{nope: [cheap]}]
model_max_budget:
  frontier: {budget_limit: 10, time_period: 1d}
";
    let cfg = ok(text, &MapEnv::default());
    let got: Vec<(&str, &str, (usize, usize))> = cfg
        .warnings
        .iter()
        .filter(|w| w.id == "CFG-05")
        .map(|w| (w.id, w.key.as_str(), warning_at(w)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("CFG-05", "litellm_settings.context_window_fallbacks[0].nope", pos(text, "nope")),
            ("CFG-05", "model_max_budget.frontier", pos(text, "frontier")),
        ]
    );
    let budget = warning(&cfg, "model_max_budget.frontier");
    assert!(budget.message.contains("`frontier`"), "{}", budget.message);
    assert!(budget.message.contains("cheap, balanced"), "{}", budget.message);
}

#[test]
fn cfg06_keys_not_implemented_warn_once_each_and_never_fail() {
    let text = "\
model_list:
  - model_name: cheap
    litellm_params:
      model: claude-3-5-haiku-latest
      mock_response: ok
      extra_headers: {x: y}
    model_info: {mode: chat, anything: goes}
litellm_settings:
  success_callback: [langfuse]
router_settings:
  num_retry: 4
general_settings:
  alerting: [slack]
mystery_section: {}
";
    let cfg = ok(text, &MapEnv::default());
    let got: Vec<(&str, &str, (usize, usize))> = cfg
        .warnings
        .iter()
        .map(|w| (w.id, w.key.as_str(), w.location.as_ref().map(|l| (l.line, l.column)).unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("CFG-06", "model_list[0].litellm_params.extra_headers", pos(text, "extra_headers")),
            ("CFG-06", "litellm_settings.success_callback", pos(text, "success_callback")),
            ("CFG-06", "router_settings.num_retry", pos(text, "num_retry")),
            ("CFG-06", "general_settings.alerting", pos(text, "alerting")),
            ("CFG-06", "mystery_section", pos(text, "mystery_section")),
        ]
    );
    for w in &cfg.warnings {
        assert!(w.message.starts_with("ignored"), "{}", w.message);
    }
    let typo = cfg.warnings.iter().find(|w| w.key == "router_settings.num_retry").unwrap();
    assert!(typo.message.contains("did you mean `num_retries`?"), "{}", typo.message);
    assert_eq!(cfg.router.num_retries, 2, "the misspelt key did not apply");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "\
model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-3-5-haiku-20241022
      api_key: os.environ/NOT_SET
      rpm: -5
  - model_name: odd
    litellm_params:
      model: vertex_ai/gemini-pro
      timeout: soon
  - litellm_params:
      model: openai/gpt-4o
router_settings:
  fallbacks: [{cheap: [frontier]}]
  routing_strategy: fastest
";
    let err = load_str(text, &MapEnv::default()).unwrap_err();
    let got: Vec<(&str, &str)> = err.problems.iter().map(|p| (p.id, p.key.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("CFG-09", "model_list[0].litellm_params.rpm"),
            ("CFG-09", "model_list[1].litellm_params.timeout"),
            ("CFG-09", "model_list[2]"),
            ("CFG-09", "router_settings.routing_strategy"),
        ],
        "{err}"
    );
    let rpm = &err.problems[0];
    let (line, col) = pos(text, "rpm: -5");
    assert_eq!(at(rpm), (line, col + "rpm: ".len()));
    assert!(rpm.message.contains("-5") && rpm.message.contains("0 or more"), "{}", rpm.message);
    assert!(err.problems[2].message.contains("no model_name"), "{}", err.problems[2].message);
    let shown = err.to_string();
    assert!(shown.starts_with("/etc/switchyard/config.yaml has 4 problems:"), "{shown}");
    assert_eq!(shown.matches("\n    fix: ").count(), 4, "{shown}");
    let json = err.to_json();
    assert_eq!(json["problems"].as_array().unwrap().len(), 4);
    assert_eq!(json["problems"][0]["id"], "CFG-09");
    assert_eq!(json["problems"][0]["line"], 6);

    // What LiteLLM starts with despite them are warnings of the same config: the unset
    // variable, the provider not implemented, the fallback to nothing.
    let cfg = ok(
        &text
            .replace("rpm: -5", "rpm: 5")
            .replace("soon", "30")
            .replace("  - litellm_params:\n      model: openai/gpt-4o\n", "")
            .replace("fastest", "simple-shuffle"),
        &MapEnv::default(),
    );
    let ids: Vec<(&str, &str)> = cfg.warnings.iter().map(|w| (w.id, w.key.as_str())).collect();
    for expected in [
        ("CFG-01", "model_list[0].litellm_params.api_key"),
        ("CFG-04", "model_list[1].litellm_params.model"),
        ("CFG-05", "router_settings.fallbacks[0].cheap[0]"),
    ] {
        assert!(ids.contains(&expected), "{expected:?} not in {ids:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Other validation.

#[test]
fn os_environ_works_for_numbers_flags_and_settings() {
    let text = "\
model_list:
  - model_name: cheap
    litellm_params:
      model: os.environ/MODEL
      rpm: os.environ/RPM
      timeout: os.environ/TIMEOUT
      drop_params: os.environ/DROP
      mock_response: ok
environment_variables:
  MODEL: anthropic/claude-3-5-haiku-latest
  RPM: 7
";
    let env = MapEnv::new([("TIMEOUT", "2.5"), ("DROP", "True"), ("RPM", "9")]);
    let cfg = ok(text, &env);
    let d = &cfg.deployments().next().unwrap();
    assert_eq!(d.model, "claude-3-5-haiku-latest");
    assert_eq!(d.rpm, Some(9), "the process environment wins over environment_variables");
    assert_eq!(d.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(d.drop_params, Some(true));
}

#[test]
fn duplicate_ids_wrong_types_and_empty_lists() {
    let text = "\
model_list:
  - model_name: a
    litellm_params: {model: claude-x, mock_response: ok}
    model_info: {id: same}
  - model_name: b
    litellm_params: {model: claude-y, mock_response: ok, tags: {a: 1}, weight: -1}
    model_info: {id: same}
";
    let ps = problems(text, &MapEnv::default());
    let got: Vec<(&str, &str)> = ps.iter().map(|p| (p.id, p.key.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("CFG-09", "model_list[1].litellm_params.tags"),
            ("CFG-09", "model_list[1].litellm_params.weight"),
            ("CFG-09", "model_list[1].model_info.id"),
        ]
    );
    assert!(
        ps[2].message.contains("`same`") && ps[2].message.contains("model_list[0]"),
        "{}",
        ps[2].message
    );

    let cfg = ok("model_list: []\n", &MapEnv::default());
    assert!(cfg.groups.is_empty());
    assert_eq!(cfg.warnings.len(), 1);
    assert!(
        cfg.warnings[0].message.contains("no models are configured"),
        "{}",
        cfg.warnings[0].message
    );
    let cfg = ok("", &MapEnv::default());
    assert!(cfg.warnings[0].message.contains("no models are configured"));
}

#[test]
fn ssl_verify_false_warns_and_master_key_falls_back_to_the_environment() {
    let text = "\
model_list:
  - model_name: local
    litellm_params: {model: openai/qwen, api_base: 'https://llm.internal/v1', ssl_verify: false}
general_settings:
  max_request_body_size_mb: 4
";
    let env = MapEnv::new([("SWITCHYARD_MASTER_KEY", "sk-switchyard-000000000000")]);
    let cfg = ok(text, &env);
    let d = cfg.deployments().next().unwrap();
    assert_eq!(d.ssl_verify, SslVerify::Disabled);
    assert_eq!(
        d.credentials,
        CredentialSource::NoneNeeded,
        "a compatible server with api_base needs no key"
    );
    let w = cfg.warnings.iter().find(|w| w.id == "NET-02").unwrap();
    assert_eq!(w.key, "model_list[0].litellm_params.ssl_verify");
    assert!(w.message.contains("verification is disabled"), "{}", w.message);
    let key = cfg.general.master_key.as_ref().unwrap();
    assert!(matches!(&key.source, ValueSource::Env { var, .. } if var == "SWITCHYARD_MASTER_KEY"));
    assert_eq!(cfg.general.max_request_body_bytes, 4 * 1024 * 1024);

    let env = MapEnv::new([
        ("SWITCHYARD_MASTER_KEY", "sk-b-000000000000"),
        ("LITELLM_MASTER_KEY", "sk-a-000000000000"),
    ]);
    let cfg = ok(text, &env);
    assert_eq!(cfg.general.master_key.unwrap().value.expose(), "sk-a-000000000000");
}

#[test]
fn a_missing_conventional_key_is_a_warning_naming_the_variables() {
    let text = "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude-x}\n";
    let cfg = ok(text, &MapEnv::default());
    let d = cfg.deployments().next().unwrap();
    assert_eq!(
        d.credentials,
        CredentialSource::Missing { looked_for: vec!["api_key", "ANTHROPIC_API_KEY"] }
    );
    assert!(
        cfg.warnings.iter().any(|w| w.message.contains("ANTHROPIC_API_KEY")),
        "{:?}",
        cfg.warnings
    );
    assert!(config::render_check(&cfg).contains("MISSING"));
}

// ---------------------------------------------------------------------------------------
// Env files.

#[test]
fn env_files_support_export_quotes_comments_and_report_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "config.yaml",
        "\
model_list:
  - model_name: a
    litellm_params:
      model: anthropic/claude-x
      api_key: os.environ/ANTHROPIC_API_KEY
  - model_name: b
    litellm_params:
      model: bedrock/us.anthropic.claude-x
general_settings:
  master_key: os.environ/GATEWAY_KEY
",
    );
    let env_file = write(
        dir.path(),
        "dev.env",
        "# comment line\n\
         \n\
         export ANTHROPIC_API_KEY=\"sk-ant-quoted value\" # trailing comment\n\
         GATEWAY_KEY='sk-#not-a-comment'\n\
         AWS_PROFILE=from-file\n",
    );
    let opts = LoadOptions { config_path: Some(cfg), env_files: vec![env_file.clone()] };
    let loaded = config::load(&opts, &MapEnv::default()).unwrap();
    let a = loaded.group("a").unwrap().deployments[0].clone();
    let key = a.api_key.as_ref().unwrap();
    assert_eq!(key.value.expose(), "sk-ant-quoted value");
    assert!(matches!(
        &key.source,
        ValueSource::ConfigEnvRef { origin: EnvOrigin::File { line: 3, .. }, .. }
    ));
    assert_eq!(loaded.general.master_key.as_ref().unwrap().value.expose(), "sk-#not-a-comment");
    let b = &loaded.group("b").unwrap().deployments[0];
    assert_eq!(
        b.aws.profile_name.as_deref(),
        Some("from-file"),
        "AWS_PROFILE from an env file reaches the deployment"
    );
    match &b.credentials {
        CredentialSource::AwsProfile { name, source: ValueSource::Env { var, origin } } => {
            assert_eq!((name.as_str(), var.as_str()), ("from-file", "AWS_PROFILE"));
            assert_eq!(origin, &EnvOrigin::File { path: env_file.clone(), line: 5 });
        }
        other => panic!("{other:?}"),
    }

    // A variable already in the process environment wins over the file.
    let env = MapEnv::new([("ANTHROPIC_API_KEY", "sk-ant-from-process-000000")]);
    let loaded = config::load(&opts, &env).unwrap();
    let key = loaded.group("a").unwrap().deployments[0].api_key.clone().unwrap();
    assert_eq!(key.value.expose(), "sk-ant-from-process-000000");
    assert!(matches!(key.source, ValueSource::ConfigEnvRef { origin: EnvOrigin::Process, .. }));
}

#[test]
fn the_first_env_file_wins_and_bad_env_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "config.yaml", &UNSET_KEY.replace("MISSING_KEY", "K"));
    let first = write(dir.path(), "first.env", "K=one\n");
    let second = write(dir.path(), "second.env", "\nK=two\n");
    let opts =
        LoadOptions { config_path: Some(cfg.clone()), env_files: vec![first, second.clone()] };
    let loaded = config::load(&opts, &MapEnv::default()).unwrap();
    assert_eq!(
        loaded.deployments().next().unwrap().api_key.as_ref().unwrap().value.expose(),
        "one"
    );

    let broken = write(dir.path(), "broken.env", "K=1\nthis is not an assignment\n");
    let missing = dir.path().join("missing.env");
    let opts =
        LoadOptions { config_path: Some(cfg), env_files: vec![broken.clone(), missing.clone()] };
    let err = config::load(&opts, &MapEnv::default()).unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.id, "CFG-03");
    let l = p.location.as_ref().unwrap();
    assert_eq!((l.file.as_path(), l.line), (broken.as_path(), 2));
    let p = &err.problems[1];
    assert_eq!(p.id, "CFG-08");
    assert!(
        p.message.contains(&missing.display().to_string()) && p.message.contains("--env-file"),
        "{}",
        p.message
    );
}

// ---------------------------------------------------------------------------------------
// Where the config is found.

#[test]
fn the_search_order_is_flag_env_var_cwd_then_home() {
    use switchyard::config::locate::locate;
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = MapEnv::new([("HOME", home.path().display().to_string())]);

    let err = locate(None, &env, cwd.path()).unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.id, "CFG-08");
    for searched in [
        cwd.path().join("switchyard.yaml"),
        home.path().join(".config/switchyard/config.yaml"),
        home.path().join(".config/litellm/config.yaml"),
    ] {
        assert!(
            p.message.contains(&searched.display().to_string()),
            "{searched:?} not in {}",
            p.message
        );
    }
    assert!(p.remedy.contains("--config") && p.remedy.contains("switchyard init"), "{}", p.remedy);

    let litellm = write(home.path(), ".config/litellm/config.yaml", "model_list: []\n");
    assert_eq!(locate(None, &env, cwd.path()).unwrap(), (litellm, ConfigOrigin::SearchPath));
    let own = write(home.path(), ".config/switchyard/config.yaml", "model_list: []\n");
    assert_eq!(locate(None, &env, cwd.path()).unwrap(), (own, ConfigOrigin::SearchPath));
    let local = write(cwd.path(), "switchyard.yaml", "model_list: []\n");
    assert_eq!(locate(None, &env, cwd.path()).unwrap(), (local, ConfigOrigin::SearchPath));

    let env = env.with("SWITCHYARD_CONFIG", "/srv/gw.yaml", EnvOrigin::Process);
    assert_eq!(
        locate(None, &env, cwd.path()).unwrap(),
        (PathBuf::from("/srv/gw.yaml"), ConfigOrigin::EnvVar("SWITCHYARD_CONFIG"))
    );
    assert_eq!(
        locate(Some(Path::new("x.yaml")), &env, cwd.path()).unwrap(),
        (PathBuf::from("x.yaml"), ConfigOrigin::Flag)
    );
}

#[test]
fn a_config_named_by_the_environment_that_does_not_exist_is_reported_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let env = MapEnv::new([("SWITCHYARD_CONFIG", missing.display().to_string())]);
    let err = config::load(&LoadOptions::default(), &env).unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.id, "CFG-08");
    assert!(p.message.contains(&missing.display().to_string()), "{}", p.message);
    assert!(p.message.contains("from $SWITCHYARD_CONFIG"), "{}", p.message);
}

// ---------------------------------------------------------------------------------------
// Real-world LiteLLM configs: LiteLLM starts with each of them, so Switchyard must too.

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/litellm-configs");

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_litellm_config_of_the_corpus_loads_with_warnings_at_most() {
    // The gateway's own key is set, as in any deployment of it; every other variable the
    // configs reference (OPENAI_API_KEY, AZURE_API_BASE, GCP_PROJECT_ID, ...) is unset.
    let env = MapEnv::new([("LITELLM_MASTER_KEY", "sk-corpus-master-key-000000")]);
    let files = corpus();
    assert!(files.len() >= 25, "the corpus has {} configs", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.starts_with("# from "),
            "{} must start with a `# from <source>` line",
            path.display()
        );
        let opts = LoadOptions { config_path: Some(path.clone()), env_files: Vec::new() };
        match config::load(&opts, &env) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    assert!(
                        w.location.is_some(),
                        "{}: warning without a place: {w:?}",
                        path.display()
                    );
                    assert_no_rust_names(&w.message);
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{} configs refused:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Shapes LiteLLM accepts, and how a wrong one reads.

#[test]
fn budgets_take_a_bare_number_or_any_budget_config_shape() {
    let text = "\
model_list:
  - model_name: cheap
    litellm_params: {model: claude-3-5-haiku-latest, mock_response: ok}
  - model_name: balanced
    litellm_params: {model: claude-sonnet-4-5, mock_response: ok}
model_max_budget: {cheap: 300, balanced: '600.5'}
provider_budget_config:
  anthropic: {max_budget: 100, budget_duration: 30d, rpm_limit: 10}
router_settings:
  provider_budget_config:
    openai: {budget_limit: 0.000000000001, time_period: 1d}
";
    let cfg = ok(text, &MapEnv::default());
    let b = &cfg.budgets;
    assert_eq!(b.model_max_budget["cheap"].budget_limit, 300.0);
    assert_eq!(b.model_max_budget["cheap"].time_period, None, "a bare number never resets");
    assert_eq!(b.model_max_budget["balanced"].budget_limit, 600.5);
    let anthropic = &b.provider_budget_config["anthropic"];
    assert_eq!((anthropic.budget_limit, anthropic.time_period.as_deref()), (100.0, Some("30d")));
    assert_eq!(b.provider_budget_config["openai"].time_period.as_deref(), Some("1d"));
    assert!(cfg.warnings.iter().all(|w| !w.key.contains("budget")), "{:#?}", cfg.warnings);

    // Budgets are enforced: one that is not a budget is a problem with its place, what was
    // found and what to write.
    let found = problems(
        "model_max_budget:\n  cheap: lots\n  balanced: {time_period: 1d}\n",
        &MapEnv::default(),
    );
    let p = found.iter().find(|p| p.key == "model_max_budget.cheap").expect("cheap");
    assert_eq!(p.id, "CFG-09");
    assert!(p.message.contains("\"lots\""), "{}", p.message);
    assert!(p.remedy.contains("a number of US dollars, or {budget_limit: USD"), "{}", p.remedy);
    let p = found.iter().find(|p| p.key == "model_max_budget.balanced").expect("balanced");
    assert!(p.message.contains("has no budget_limit"), "{}", p.message);
}

/// Words of Rust and serde that must never reach a person reading a config message.
fn assert_no_rust_names(text: &str) {
    const FORBIDDEN: [&str; 25] = [
        "Raw",
        "struct ",
        "enum ",
        "Option<",
        "<u32>",
        "<u64>",
        "Whole",
        "NonNeg",
        "Seconds",
        "TextList",
        "Text",
        "Flag",
        "Map<",
        "Vec<",
        "BTreeMap",
        "Value",
        "newtype",
        "tuple",
        "sequence",
        "invalid length",
        "a map,",
        "unit value",
        "i64",
        "u64",
        "f64",
    ];
    for word in FORBIDDEN {
        assert!(!text.contains(word), "`{word}` in: {text}");
    }
}

/// Every message and fix a type error can produce, for wrong values of many keys: none
/// may name a Rust type.
#[test]
fn type_errors_describe_what_to_write_and_never_name_an_internal_type() {
    let configs = [
        "model_list: cheap\n",
        "model_list:\n  - cheap\n",
        "model_list:\n  - model_name: {a: 1}\n    litellm_params: [model]\n",
        "model_list:\n  - model_name: a\n    litellm_params: model\n",
        "model_list:\n  - model_name: a\n    model_info: text\n    litellm_params:\n      model: [anthropic/x]\n      api_key: {k: v}\n      rpm: {n: 1}\n      tpm: -1\n      timeout: [1]\n      stream_timeout: soon\n      weight: heavy\n      order: 1.5\n      drop_params: maybe\n      tags: {a: 1}\n      ssl_verify: [x]\n      max_retries: 99999999999\n      max_budget: free\n      input_cost_per_token: -1\n      mock_response: {a: 1}\n",
        "router_settings: [a]\n",
        "router_settings:\n  routing_strategy: {a: 1}\n  num_retries: three\n  timeout: -1\n  retry_policy: often\n  allowed_fails: [1]\n  cooldown_time: {s: 1}\n  disable_cooldowns: sometimes\n  fallbacks: cheap\n  context_window_fallbacks: [cheap]\n  content_policy_fallbacks: [{a: {b: c}}]\n  default_fallbacks: {a: b}\n  enable_pre_call_checks: [x]\n  provider_budget_config: [x]\n",
        "router_settings:\n  retry_policy: {TimeoutErrorRetries: [1], RateLimitErrorRetries: lots}\n",
        "litellm_settings: true\n",
        "litellm_settings:\n  drop_params: [x]\n  request_timeout: soon\n  num_retries: -2\n  fallbacks: {a: {b: c}}\n",
        "general_settings: 3\n",
        "general_settings:\n  master_key: [k]\n  max_request_body_size_mb: big\n  health_check_interval: {a: 1}\n  background_health_checks: sometimes\n",
        "environment_variables: [A]\n",
        "model_max_budget: cheap\nprovider_budget_config:\n  openai: [1]\n  anthropic: {budget_limit: lots, time_period: {a: 1}}\n",
    ];
    let mut texts = Vec::new();
    for text in configs {
        match load_str(text, &MapEnv::default()) {
            Ok(cfg) => texts.extend(cfg.warnings.iter().map(|w| w.message.clone())),
            Err(e) => {
                for p in &e.problems {
                    texts.push(p.message.clone());
                    texts.push(p.remedy.clone());
                }
            }
        }
    }
    let type_errors = texts.iter().filter(|t| t.contains("expected")).count();
    assert!(type_errors >= 40, "{type_errors} type errors:\n{}", texts.join("\n"));
    for t in &texts {
        assert_no_rust_names(t);
    }
}

#[test]
fn include_merges_files_as_litellm_does_and_problems_point_into_them() {
    // LiteLLM's own example: the parent names model_config.yaml, whose model_list is used.
    let parent = Path::new(CORPUS).join("26-include-parent.yaml");
    let cfg = config::load(
        &LoadOptions { config_path: Some(parent.clone()), env_files: Vec::new() },
        &MapEnv::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.aliases().collect::<Vec<_>>(), vec!["gpt-4o", "fake-anthropic-endpoint"]);
    let included = Path::new(CORPUS).join("26-include-model-config.yaml");
    assert_eq!(cfg.included, vec![included.clone()]);
    let d = &cfg.group("gpt-4o").unwrap().deployments[0];
    assert_eq!((d.location.file.as_path(), d.location.line), (included.as_path(), 3));
    assert!(config::render_check(&cfg).contains("included:"));
    assert_eq!(config::check_json(&cfg)["included"][0], included.display().to_string());

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "models.yaml",
        "model_list:\n  - model_name: extra\n    litellm_params:\n      model: anthropic/claude-x\n      rpm: -1\nlitellm_settings:\n  drop_params: true\n",
    );
    let main = write(
        dir.path(),
        "config.yaml",
        "include: [models.yaml]\nmodel_list:\n  - model_name: own\n    litellm_params: {model: claude-x, mock_response: hi}\nlitellm_settings:\n  num_retries: 1\n",
    );
    let opts = LoadOptions { config_path: Some(main.clone()), env_files: Vec::new() };
    let err = config::load(&opts, &MapEnv::default()).unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.key, "model_list[1].litellm_params.rpm", "lists extend: {err}");
    let l = p.location.as_ref().unwrap();
    assert_eq!((l.file.clone(), l.line, l.column), (dir.path().join("models.yaml"), 5, 12));

    write(
        dir.path(),
        "models.yaml",
        "model_list:\n  - model_name: extra\n    litellm_params: {model: claude-y, mock_response: hi}\nlitellm_settings:\n  drop_params: false\n  drop_params: true\n",
    );
    let cfg = config::load(&opts, &MapEnv::default()).unwrap();
    assert_eq!(cfg.aliases().collect::<Vec<_>>(), vec!["own", "extra"]);
    assert!(cfg.general.drop_params);
    assert_eq!(cfg.router.num_retries, 2, "the included litellm_settings replaced the config's");
    let w = warning(&cfg, "litellm_settings");
    assert!(w.message.contains("replaces the one written in the config"), "{}", w.message);
    assert_eq!(w.location.as_ref().unwrap().file, dir.path().join("models.yaml"));
    let twice = warning(&cfg, "litellm_settings.drop_params");
    assert_eq!((twice.id, warning_at(twice)), ("CFG-03", (6, 3)));
    assert_eq!(twice.location.as_ref().unwrap().file, dir.path().join("models.yaml"));

    let main = write(dir.path(), "config.yaml", "include: missing.yaml\nmodel_list: []\n");
    let err = config::load(
        &LoadOptions { config_path: Some(main), env_files: Vec::new() },
        &MapEnv::default(),
    )
    .unwrap_err();
    assert_eq!((err.problems[0].id, err.problems[0].key.as_str()), ("CFG-08", "include"));
    assert!(err.problems[0].message.contains("missing.yaml"), "{}", err.problems[0].message);
}

#[test]
fn a_deployment_that_could_never_be_called_loads_with_the_reason_as_its_answer() {
    // LiteLLM starts with each of these and fails their requests; so does Switchyard, and
    // says why at startup.
    let text = "\
model_list:
  - model_name: vllm
    litellm_params: {model: hosted_vllm/meta-llama/Llama-3.1-8B}
  - model_name: local
    litellm_params: {model: ollama/llama3, api_base: 'localhost:11434'}
  - model_name: tls
    litellm_params: {model: openai/qwen, api_base: 'https://llm.internal/v1', ssl_verify: /nonexistent/ca.pem}
  - model_name: keys
    litellm_params: {model: bedrock/anthropic.claude-x, aws_access_key_id: AKIAEXAMPLE}
  - model_name: mocked
    litellm_params: {model: hosted_vllm/x, api_base: 'not a url', mock_response: hi}
";
    let cfg = ok(text, &MapEnv::default());
    for (alias, key, id, said) in [
        ("vllm", "model_list[0].litellm_params.model", "CFG-09", "has no api_base"),
        ("local", "model_list[1].litellm_params.api_base", "CFG-09", "not an http(s) URL"),
        ("tls", "model_list[2].litellm_params.ssl_verify", "CFG-08", "does not exist"),
        (
            "keys",
            "model_list[3].litellm_params.aws_access_key_id",
            "CFG-09",
            "aws_secret_access_key is not",
        ),
    ] {
        let w = warning(&cfg, key);
        assert_eq!(w.id, id, "{alias}");
        assert!(
            w.message.contains(said) && w.message.contains("every request to it fails"),
            "{}",
            w.message
        );
        let u = cfg.group(alias).unwrap().deployments[0].unservable.clone().unwrap();
        assert!(u.cause.contains(said), "{alias}: {}", u.cause);
    }
    assert!(
        cfg.warnings.iter().all(|w| !w.key.starts_with("model_list[4]")),
        "{:#?}",
        cfg.warnings
    );
    assert_eq!(cfg.group("mocked").unwrap().deployments[0].unservable, None);
}

#[test]
fn every_key_takes_the_shapes_litellm_takes() {
    let text = "\
model_list:
  - model_name: a
    litellm_params:
      model: anthropic/claude-x
      api_key: sk-ant-x
      num_retries: '3'
      timeout: 30.5
      stream_timeout: '60'
      drop_params: 'True'
      tags: single-tag
      rpm: os.environ/A
    model_info: {id: 7, mode: chat, supports_vision: True, access_groups: [beta]}
  - model_name: b
    litellm_params: {model: claude-y, mock_response: hi}
router_settings:
  num_retries: '4'
  timeout: '600'
  allowed_fails: 2.0
  disable_cooldowns: 'false'
  fallbacks: {a: b}
  default_fallbacks: b
  retry_policy: {RateLimitErrorRetries: '5'}
  model_group_alias: {gpt-4: a}
  routing_strategy_args: {ttl: 60}
litellm_settings:
  callbacks: prometheus
  success_callback: [langfuse]
  cache: 'True'
  cache_params: {type: redis, host: os.environ/REDIS_HOST, port: 6379}
  request_timeout: '600'
general_settings:
  master_key: 1234567890123
  alerting: [slack]
  pass_through_endpoints: [{path: /x, target: 'http://y', headers: {a: b}}]
  background_health_checks: 'true'
  health_check_interval: '300'
environment_variables: {A: 1, B: true, C: 1.5}
";
    let cfg = ok(text, &MapEnv::default());
    let d = &cfg.group("a").unwrap().deployments[0];
    assert_eq!((d.num_retries, d.rpm, d.drop_params), (Some(3), Some(1), Some(true)));
    assert_eq!(d.timeout, Some(Duration::from_secs_f64(30.5)));
    assert_eq!(d.stream_timeout, Some(Duration::from_secs(60)));
    assert_eq!((d.tags.clone(), d.id.as_str()), (vec!["single-tag".to_owned()], "7"));
    let r = &cfg.router;
    assert_eq!((r.num_retries, r.allowed_fails, r.disable_cooldowns), (4, 2, false));
    assert_eq!(r.timeout, Some(Duration::from_secs(600)));
    assert_eq!(r.fallbacks.get("a"), Some(&vec!["b".to_owned()]));
    assert_eq!(r.default_fallbacks, vec!["b".to_owned()]);
    assert_eq!(r.retry_policy.rate_limit, Some(5));
    assert_eq!(r.model_group_alias["gpt-4"].model, "a");
    let g = &cfg.general;
    assert_eq!(g.master_key.as_ref().unwrap().value.expose(), "1234567890123");
    assert!(g.background_health_checks);
    assert_eq!(g.health_check_interval, Duration::from_secs(300));
    assert_eq!(g.request_timeout, Some(Duration::from_secs(600)));
    // A Redis cache without a host (REDIS_HOST unset) is off, with a warning.
    assert!(g.cache.is_none());
    assert_eq!(warning(&cfg, "litellm_settings.cache_params.host").id, "CFG-01");
    // What is not applied yet is named, never refused.
    for key in [
        "router_settings.routing_strategy_args",
        "litellm_settings.callbacks",
        "general_settings.pass_through_endpoints",
    ] {
        assert_eq!(warning(&cfg, key).id, "CFG-06");
    }
}

// ---------------------------------------------------------------------------------------
// Prices.

const PRICES: &str = "\
model_list:
  - model_name: cheap
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_key: sk-ant-api03-prices-0123456789abcdef
  - model_name: local
    litellm_params:
      model: ollama/llama3.2
      input_cost_per_second: 0.0001
  - model_name: free
    litellm_params:
      model: ollama/qwen3
      input_cost_per_token: 0
      output_cost_per_token: 0
      cache_creation_input_token_cost_above_1hr: 0
  - model_name: custom
    litellm_params:
      model: openai/my-finetune
      api_base: http://127.0.0.1:9/v1
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_pixel: 0.1
      max_input_tokens: 32000
  - model_name: quick
    litellm_params:
      model: openai/whatever
      mock_response: WORKS
";

#[test]
fn cfg10_a_deployment_with_no_price_anywhere_is_a_warning_naming_the_keys_to_write() {
    let cfg = ok(PRICES, &MapEnv::default());
    let unpriced: Vec<&config::ConfigWarning> =
        cfg.warnings.iter().filter(|w| w.id == "CFG-10").collect();
    // The table prices Haiku, 0 is a price, a mock bills nothing: two deployments remain.
    assert_eq!(unpriced.len(), 2, "{unpriced:#?}");

    let local = warning(&cfg, "model_list[1].litellm_params.model");
    assert_eq!(local.id, "CFG-10");
    assert_eq!(warning_at(local), pos(PRICES, "model: ollama/llama3.2"));
    assert_eq!(
        local.message,
        "`local` (ollama/llama3.2) has no price in its litellm_params, its model_info or the \
         built-in price table: spend will be recorded as unknown, not as $0. Fix: add \
         input_cost_per_token and output_cost_per_token (USD per token) to its litellm_params \
         or model_info, or 0 for a free local model"
    );
    // Half a price is no price: the missing key is named.
    let custom = warning(&cfg, "model_list[3].litellm_params.model");
    assert!(custom.message.contains("has an input price but no output price"), "{custom:?}");
    assert!(custom.message.contains("Fix: add output_cost_per_token (USD"), "{custom:?}");

    // `config check`, text and JSON, says the same.
    let text = config::render_check(&cfg);
    assert!(text.contains("CFG-10 model_list[1].litellm_params.model: `local`"), "{text}");
    assert!(text.contains("not as $0"), "{text}");
    let json = config::check_json(&cfg);
    let ids: Vec<&str> =
        json["warnings"].as_array().unwrap().iter().filter_map(|w| w["id"].as_str()).collect();
    assert_eq!(ids.iter().filter(|id| **id == "CFG-10").count(), 2, "{json}");

    // Each deployment's price, per million tokens, with where it came from.
    for (alias, shown) in [
        ("cheap", "$1/$5 table"),
        ("local", "unknown"),
        ("free", "$0/$0 config"),
        ("custom", "$1/? unknown"),
    ] {
        let row = text.lines().find(|l| l.trim_start().starts_with(&format!("{alias} ")));
        assert!(row.is_some_and(|r| r.contains(shown)), "{alias}: `{shown}` in\n{text}");
    }
    let cheap = &json["aliases"][0]["deployments"][0]["price"];
    assert_eq!(cheap["known"], true);
    assert_eq!(cheap["input_per_million"], "1");
    assert_eq!(cheap["output_per_million"], "5");
    let custom = &json["aliases"][3]["deployments"][0]["price"];
    assert_eq!(custom["known"], false);
    assert_eq!(custom["sources"]["input_cost_per_token"], "model_info");
}

#[test]
fn cfg06_litellm_prices_that_are_not_applied_are_named_where_they_are_written() {
    let cfg = ok(PRICES, &MapEnv::default());
    let per_second = warning(&cfg, "model_list[1].litellm_params.input_cost_per_second");
    assert_eq!(per_second.id, "CFG-06");
    assert!(per_second.message.contains("per-second prices are not applied"), "{per_second:?}");
    let moved =
        warning(&cfg, "model_list[2].litellm_params.cache_creation_input_token_cost_above_1hr");
    assert!(moved.message.contains("applies under model_info; move it there"), "{moved:?}");
    let pixel = warning(&cfg, "model_list[3].model_info.output_cost_per_pixel");
    assert_eq!(pixel.id, "CFG-06");
    assert!(pixel.message.contains("a LiteLLM price Switchyard does not apply"), "{pixel:?}");
    assert_eq!(warning_at(pixel), pos(PRICES, "output_cost_per_pixel"));
    // Applied prices and the rest of model_info are never warned about.
    for key in [
        "model_list[2].litellm_params.input_cost_per_token",
        "model_list[3].model_info.input_cost_per_token",
        "model_list[3].model_info.max_input_tokens",
    ] {
        assert!(cfg.warnings.iter().all(|w| w.key != key), "{key}: {:#?}", cfg.warnings);
    }
}

#[test]
fn batch_concurrency_is_a_whole_number_of_items_at_once() {
    let base = "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude-x, api_key: k}\n";
    let cfg = ok(base, &MapEnv::default());
    assert_eq!(cfg.general.batch_concurrency, 8, "the default");
    let cfg =
        ok(&format!("{base}general_settings:\n  batch_concurrency: 32\n"), &MapEnv::default());
    assert_eq!(cfg.general.batch_concurrency, 32);
    for bad in ["0", "2.5", "5000"] {
        let text = format!("{base}general_settings:\n  batch_concurrency: {bad}\n");
        let found = problems(&text, &MapEnv::default());
        let p = found
            .iter()
            .find(|p| p.key == "general_settings.batch_concurrency")
            .unwrap_or_else(|| panic!("{bad}: {found:?}"));
        assert_eq!(p.id, "CFG-09");
        assert!(p.remedy.contains("1 to 1024"), "{}", p.remedy);
    }
}

#[test]
fn parallel_request_caps_are_read_and_zero_is_no_cap() {
    let base = "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/claude-x, api_key: k, max_parallel_requests: 3}\n";
    let cfg = ok(base, &MapEnv::default());
    assert_eq!(cfg.general.shedding.max_parallel, None, "no cap by default");
    assert_eq!(cfg.general.shedding.max_wait, std::time::Duration::from_secs(5));
    assert_eq!(cfg.general.shedding.max_queued, 100);
    assert_eq!(cfg.general.key_max_parallel, None);
    assert!(
        cfg.warnings.iter().all(|w| !w.key.contains("max_parallel_requests")),
        "every max_parallel_requests is applied: {:#?}",
        cfg.warnings
    );
    let text = format!(
        "{base}general_settings:\n  max_parallel_requests: 4\n  global_max_parallel_requests: \
         50\n  max_queue_wait_seconds: 0.5\n  max_queued_requests: 7\n"
    );
    let cfg = ok(&text, &MapEnv::default());
    assert_eq!(cfg.general.key_max_parallel, Some(4));
    assert_eq!(cfg.general.shedding.max_parallel, Some(50));
    assert_eq!(cfg.general.shedding.max_wait, std::time::Duration::from_millis(500));
    assert_eq!(cfg.general.shedding.max_queued, 7);
    assert!(
        cfg.warnings.iter().all(|w| !w.key.starts_with("general_settings")),
        "{:#?}",
        cfg.warnings
    );
    // LiteLLM's settings reference writes 0 for both: read as no cap, not "refuse everything".
    let text = format!(
        "{base}general_settings:\n  max_parallel_requests: 0\n  global_max_parallel_requests: 0\n"
    );
    let cfg = ok(&text, &MapEnv::default());
    assert_eq!((cfg.general.key_max_parallel, cfg.general.shedding.max_parallel), (None, None));
}
