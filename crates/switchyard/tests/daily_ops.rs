//! Running it every day, with the real binary in a temporary HOME and state directory:
//! `start` → `status` → a request → `stop`; a taken port (GW-03) and a broken config at
//! start; hot reload with a valid change (a new alias served while a stream stays open) and
//! an invalid one (CFG-07, the old config keeps serving, `status` shows why); the drain on
//! SIGTERM; `init` and `service install`. Every wait is a poll with a generous bound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ops_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mock_upstream::{MockUpstream, Reply};
use ops_support::*;
use serde_json::Value;
use switchyard::daemon::process::{self, Sig};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_status_request_restart_stop() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let status = ops.start(&config, &[]).await;
    let pid = status["pid"].as_u64().unwrap() as u32;
    let url = status["url"].as_str().unwrap().to_owned();
    assert_eq!(status["config"], config.to_str().unwrap());
    assert_eq!(status["answering"], true);
    assert!(status["last_reload"].is_null(), "{status}");
    let aliases: Vec<&str> =
        status["health"].as_array().unwrap().iter().map(|a| a["alias"].as_str().unwrap()).collect();
    assert_eq!(aliases, ["cheap", "balanced", "frontier"]);
    assert!(ops.state().join("switchyard.pid").is_file());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ops.state()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "the state directory is private");

    // The verify-style request.
    assert_eq!(answer(&url, "cheap").await, "WORKS");

    let text = ops.run(&["status"]).await;
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains(&format!("Switchyard is running (pid {pid})")), "{text}");
    assert!(text.stdout.contains("cheap          1/1 healthy"), "{text}");

    // Starting again says so and succeeds.
    let again = ops.run(&["start", "--config", config.to_str().unwrap()]).await;
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stdout.contains("already running"), "{again}");

    // Restart: a new process, same command line.
    let restarted = ops.run(&["restart"]).await;
    assert_eq!(restarted.code, 0, "{restarted}");
    let status = ops.status().await;
    let new_pid = status["pid"].as_u64().unwrap() as u32;
    assert_ne!(new_pid, pid);
    assert!(!process::alive(pid), "the old gateway is gone");
    let url = status["url"].as_str().unwrap().to_owned();
    assert_eq!(answer(&url, "frontier").await, "WORKS");

    let stop = ops.run(&["stop"]).await;
    assert_eq!(stop.code, 0, "{stop}");
    assert!(stop.stdout.contains(&format!("Switchyard stopped (pid {new_pid})")), "{stop}");
    assert!(!process::alive(new_pid));
    assert!(!ops.state().join("switchyard.pid").exists(), "no stale pid file");
    assert!(!ops.state().join("gateway.json").exists());

    let gone = ops.run(&["status"]).await;
    assert_eq!(gone.code, 3, "{gone}");
    assert!(gone.stdout.contains("GW-04") && gone.stdout.contains("switchyard start"), "{gone}");
    let gone = ops.status().await;
    assert_eq!(gone["running"], false);
    assert_eq!(gone["diagnosis"]["id"], "GW-04");
    let stop = ops.run(&["stop"]).await;
    assert_eq!(stop.code, 0, "stopping a stopped gateway is fine: {stop}");

    let logs = ops.run(&["logs", "-n", "200"]).await;
    assert_eq!(logs.code, 0, "{logs}");
    assert!(logs.stdout.contains("Switchyard listening on"), "{logs}");
    assert!(logs.stdout.contains("stopped"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_on_a_taken_port_names_the_holder() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = ops.run(&["start", "--config", config.to_str().unwrap(), "--port", &port]).await;
    assert_eq!(out.code, 69, "{out}");
    assert!(out.stderr.contains("GW-03") && out.stderr.contains("already in use"), "{out}");
    if cfg!(target_os = "linux") {
        let holder = format!("held by pid {}", std::process::id());
        assert!(out.stderr.contains(&holder), "{out}");
    }
    assert!(out.stderr.contains("--port"), "the fix names --port: {out}");
    assert!(!ops.state().join("switchyard.pid").exists());
    assert_eq!(ops.run(&["status"]).await.code, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_a_broken_config_leaves_nothing_running() {
    let ops = Ops::new();
    let config =
        ops.write("broken.yaml", "model_list:\n  - model_name: cheap\n    litellm_params: [oops\n");
    let out = ops.run(&["start", "--config", config.to_str().unwrap(), "--port", "0"]).await;
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("exited during startup"), "{out}");
    assert!(out.stderr.contains("broken.yaml:") && out.stderr.contains("CFG-03"), "{out}");
    assert!(out.stderr.contains("Full log:"), "{out}");
    assert!(!ops.state().join("switchyard.pid").exists(), "no stale pid file");
    assert!(!ops.state().join("gateway.json").exists());
    assert!(processes_naming(&ops.state()).is_empty(), "nothing left running");
    assert_eq!(ops.run(&["status"]).await.code, 3);

    // No config at all: said before anything is started.
    let out = ops.run(&["start", "--port", "0"]).await;
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("CFG-08") && out.stderr.contains("switchyard init"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_edit_serves_a_new_alias_without_dropping_a_stream() {
    let ops = Ops::new();
    let mock = MockUpstream::builder().api_key(ANT_KEY).start().await;
    let config = ops.write("switchyard.yaml", &upstream_config(&mock.url(), ""));
    let status = ops.start(&config, &[]).await;
    let url = status["url"].as_str().unwrap().to_owned();
    let release = Arc::new(Notify::new());
    // message_start, content_block_start, the first delta; then the mock waits.
    mock.push(Reply::text_chunks(["Hello", " from", " before"]).hold_after(3, release.clone()));

    let mut stream = chat(&url, "streamed", true).await;
    assert_eq!(stream.status(), 200);
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"content\":\"Hello\"").await;

    // An editor saves the file with a new alias; the watcher picks it up.
    ops.write("switchyard.yaml", &upstream_config(&mock.url(), EXTRA_ALIAS));
    let status = ops.status_until("the reload", |s| s["last_reload"]["ok"] == true).await;
    assert_eq!(status["last_reload"]["trigger"], "file change");
    assert!(
        status["last_reload"]["summary"].as_str().unwrap().contains("aliases added: extra"),
        "{status}"
    );
    assert_eq!(answer(&url, "extra").await, "EXTRA");

    // The stream that started before the reload finishes on its own config.
    release.notify_one();
    read_to_end(&mut stream, &mut seen).await;
    assert!(seen.contains("\" before\"") && seen.ends_with("data: [DONE]\n\n"), "{seen}");
    assert_eq!(answer(&url, "streamed").await, "WORKS");

    let text = ops.run(&["status"]).await;
    assert!(text.stdout.contains("(file change): ok, aliases added: extra"), "{text}");
    assert_eq!(ops.run(&["stop"]).await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_is_rejected_and_the_old_config_keeps_serving() {
    let ops = Ops::new();
    // The key lives in an env file, as `init` writes it.
    let env = ops.write("env", &format!("SWITCHYARD_MASTER_KEY={MASTER}\n"));
    let with_env_key = |extra: &str| {
        mock_config(extra).replace(
            &format!("master_key: {MASTER}"),
            "master_key: os.environ/SWITCHYARD_MASTER_KEY",
        )
    };
    let config = ops.write("switchyard.yaml", &with_env_key(""));
    let status = ops.start(&config, &["--env-file", env.to_str().unwrap(), "--no-watch"]).await;
    let url = status["url"].as_str().unwrap().to_owned();
    let pid = status["pid"].as_u64().unwrap() as u32;

    // Fallbacks that are not a list of rules (CFG-09), asked for by the API.
    let broken = with_env_key("router_settings:\n  fallbacks: cheap\n");
    ops.write("switchyard.yaml", &broken);
    let resp =
        http().post(format!("{url}/config/reload")).bearer_auth(MASTER).send().await.unwrap();
    assert_eq!(resp.status(), 422);
    let record: Value = resp.json().await.unwrap();
    assert_eq!(record["ok"], false);
    assert_eq!(record["error"]["id"], "CFG-07");
    let problem = &record["error"]["problems"][0];
    assert_eq!(problem["id"], "CFG-09", "{record}");
    assert!(
        problem["line"].as_u64().unwrap() > 0
            && problem["key"].as_str().unwrap().contains("fallbacks"),
        "{record}"
    );

    // Still serving the previous config.
    assert_eq!(answer(&url, "cheap").await, "WORKS");
    let text = ops.run(&["status"]).await;
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("REJECTED (CFG-07)"), "{text}");
    assert!(text.stdout.contains("CFG-09") && text.stdout.contains("switchyard.yaml:"), "{text}");
    assert!(text.stdout.contains("still serving the config loaded at"), "{text}");
    assert!(text.stdout.contains("cheap          1/1 healthy"), "health still shows: {text}");

    // Fixed, then SIGHUP.
    ops.write("switchyard.yaml", &with_env_key(EXTRA_ALIAS));
    process::signal(pid, Sig::Hup).unwrap();
    let status = ops
        .status_until("the SIGHUP reload", |s| {
            s["last_reload"]["trigger"] == "SIGHUP" && s["last_reload"]["ok"] == true
        })
        .await;
    assert_eq!(status["pid"].as_u64().unwrap() as u32, pid, "reloaded in place");
    assert_eq!(answer(&url, "extra").await, "EXTRA");
    assert_eq!(ops.run(&["stop"]).await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_env_file_resolves_os_environ_again() {
    let ops = Ops::new();
    let env = ops.write("env", "SWITCHYARD_MASTER_KEY=sk-first\n");
    let config = ops.write(
        "switchyard.yaml",
        &mock_config("").replace(
            &format!("master_key: {MASTER}"),
            "master_key: os.environ/SWITCHYARD_MASTER_KEY",
        ),
    );
    let status = ops.start(&config, &["--env-file", env.to_str().unwrap()]).await;
    let url = status["url"].as_str().unwrap().to_owned();
    let models = |key: &'static str| {
        let url = url.clone();
        async move {
            http().get(format!("{url}/v1/models")).bearer_auth(key).send().await.unwrap().status()
        }
    };
    assert_eq!(models("sk-first").await, 200);

    ops.write("env", "SWITCHYARD_MASTER_KEY=sk-second\n");
    let status = ops.status_until("the env file reload", |s| s["last_reload"]["ok"] == true).await;
    assert_eq!(status["last_reload"]["trigger"], "file change");
    assert!(
        status["last_reload"]["summary"].as_str().unwrap().contains("settings changed"),
        "{status}"
    );
    assert_eq!(models("sk-second").await, 200);
    assert_eq!(models("sk-first").await, 401);
    assert_eq!(ops.run(&["stop"]).await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_stream_in_flight_then_exits_0() {
    let ops = Ops::new();
    let mock = MockUpstream::builder().api_key(ANT_KEY).start().await;
    let release = Arc::new(Notify::new());
    mock.push(Reply::text_chunks(["Hello", " still", " here"]).hold_after(3, release.clone()));
    let config = ops.write("switchyard.yaml", &upstream_config(&mock.url(), ""));
    let state = ops.tmp.path().join("fg-state");
    // In the foreground (as a service manager runs it), so its exit status is ours to see.
    let mut gateway = ops
        .cmd(&[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--port",
            "0",
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(gateway.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let url = line.strip_prefix("Switchyard listening on ").unwrap().to_owned();
    let addr = url.strip_prefix("http://").unwrap().to_owned();

    let mut stream = chat(&url, "streamed", true).await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"content\":\"Hello\"").await;

    let mut stop = ops.cmd(&["stop", "--state-dir", state.to_str().unwrap()]);
    let stopping = tokio::task::spawn_blocking(move || Out::from(stop.output().unwrap()));
    // Draining: no new connections, while the stream stays open.
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "the gateway kept accepting connections");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stopping.is_finished(), "stop returned before the stream finished");

    release.notify_one();
    read_to_end(&mut stream, &mut seen).await;
    assert!(seen.contains("\" here\"") && seen.ends_with("data: [DONE]\n\n"), "{seen}");
    let stopped = stopping.await.unwrap();
    assert_eq!(stopped.code, 0, "{stopped}");
    assert!(stopped.stdout.contains("Switchyard stopped"), "{stopped}");
    let status = tokio::task::spawn_blocking(move || gateway.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!state.join("switchyard.pid").exists(), "the gateway removed its pid file");
}

/// A held stream, then SIGTERM: with `signals` = 1 a 1 s drain timeout ends it, with 2 the
/// second signal does (the drain timeout is a minute then). Either way the gateway exits 1
/// and the client sees its connection end.
async fn cut_short(signals: usize) {
    let ops = Ops::new();
    let mock = MockUpstream::builder().api_key(ANT_KEY).start().await;
    let release = Arc::new(Notify::new());
    mock.push(Reply::text_chunks(["Hello", " never"]).hold_after(3, release.clone()));
    let config = ops.write("switchyard.yaml", &upstream_config(&mock.url(), ""));
    let mut gateway = ops
        .cmd(&[
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--port",
            "0",
            "--drain-timeout",
            if signals == 1 { "1" } else { "60" },
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(gateway.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let url = line.strip_prefix("Switchyard listening on ").unwrap().to_owned();
    let addr = url.strip_prefix("http://").unwrap().to_owned();
    let mut stream = chat(&url, "streamed", true).await;
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, "\"content\":\"Hello\"").await;

    let started = Instant::now();
    process::signal(gateway.id(), Sig::Term).unwrap();
    if signals == 2 {
        while std::net::TcpStream::connect(&addr).is_ok() {
            assert!(started.elapsed() < PATIENCE, "the gateway kept accepting connections");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        process::signal(gateway.id(), Sig::Term).unwrap();
    }
    let status = tokio::task::spawn_blocking(move || gateway.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(1), "cut short by {signals} signal(s)");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "{took:?}");
    if signals == 1 {
        assert!(took >= Duration::from_millis(900), "it waited for the drain: {took:?}");
    }
    // The client sees the end of the connection, not a hang.
    tokio::time::timeout(PATIENCE, async { while let Ok(Some(_)) = stream.chunk().await {} })
        .await
        .expect("the stream was left hanging");
    release.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_timeout_bounds_the_drain() {
    cut_short(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    cut_short(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_checked_config_and_never_overwrites() {
    let ops = Ops::new();
    let dir = ops.home().join(".config/switchyard");
    for provider in ["both", "anthropic", "bedrock"] {
        let out = ops
            .run(&[
                "init",
                "--provider",
                provider,
                "--profile",
                "dev",
                "--region",
                "eu-west-1",
                "--force",
            ])
            .await;
        assert_eq!(out.code, 0, "{out}");
        for next in ["switchyard doctor", "switchyard start", "switchyard verify"] {
            assert!(out.stdout.contains(next), "{out}");
        }
        let env = dir.join("env");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&env).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{provider}");
        // Found on the search path, resolved with the env file.
        let check =
            ops.run(&["config", "check", "--env-file", env.to_str().unwrap(), "--json"]).await;
        assert_eq!(check.code, 0, "{provider}: {check}");
        let v: Value = serde_json::from_str(&check.stdout).unwrap();
        assert_eq!(v["valid"], true);
    }
    let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(config.contains("bedrock/eu.anthropic.claude-haiku-4-5"), "{config}");
    assert!(dir.join("config.yaml.bak").is_file(), "--force keeps the old file");

    let refused = ops.run(&["init"]).await;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(
        refused.stderr.contains("not overwriting") && refused.stderr.contains("--force"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("config.yaml")).unwrap(), config, "untouched");
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_install_writes_a_user_unit_for_the_same_files() {
    let ops = Ops::new();
    let config = ops.write("switchyard.yaml", &mock_config(""));
    let env = ops.write("env", &format!("SWITCHYARD_MASTER_KEY={MASTER}\n"));
    let (c, e) = (config.to_str().unwrap(), env.to_str().unwrap());

    let dry = ops.run(&["service", "install", "--config", c, "--env-file", e, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry}");
    let unit_path = ops.home().join(".config/systemd/user/switchyard.service");
    assert!(dry.stdout.contains(&format!("# would write {}", unit_path.display())), "{dry}");
    assert!(!unit_path.exists(), "a dry run writes nothing");

    let out = ops.run(&["service", "install", "--config", c, "--env-file", e, "--no-start"]).await;
    assert_eq!(out.code, 0, "{out}");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exec = format!(
        "ExecStart={} serve --config {c} --env-file {e} --host 127.0.0.1 --port 4000 --state-dir {} --drain-timeout 30\n",
        std::fs::canonicalize(env!("CARGO_BIN_EXE_switchyard")).unwrap().display(),
        ops.state().display()
    );
    assert!(unit.contains(&exec), "{unit}\nwanted {exec}");
    assert!(
        unit.contains(&format!("StandardOutput=append:{}/switchyard.log", ops.state().display()))
    );
    assert_eq!(
        unit.trim_end(),
        dry.stdout.split_once('\n').unwrap().1.trim_end(),
        "the dry run shows the same unit"
    );

    let again = ops.run(&["service", "install", "--config", c, "--no-start"]).await;
    assert_eq!(again.code, 1, "no silent overwrite: {again}");
    let removed = ops.run(&["service", "uninstall", "--no-stop"]).await;
    assert_eq!(removed.code, 0, "{removed}");
    assert!(!unit_path.exists());
}
