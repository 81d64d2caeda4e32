//! The container image, Compose file and Kubernetes manifests under deploy/ agree with each
//! other and with the binary: the ports, flags, probe routes, drain arithmetic, environment
//! variables and config they name are checked here, and the binary is run with the image's
//! exact command line and with a Kubernetes ConfigMap's symlink layout (whose atomic swap
//! must reload the config).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod deploy_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deploy_support::*;
use serde_json::Value;

const BINARY: &str = "/usr/local/bin/switchyard";
const KEY: &str = "sk-deploy-test-master";

fn port_of(argv: &[String]) -> u16 {
    flag(argv, "--port").expect("--port").parse().unwrap()
}

/// Every flag after `serve` exists in `switchyard serve --help`.
fn assert_serve_flags(argv: &[String], what: &str) {
    assert_eq!(argv[..2], [BINARY, "serve"], "{what}: {argv:?}");
    let known = help_flags("serve");
    for f in flags(&argv[2..]) {
        assert!(known.contains(&f), "{what}: {f} is not a `switchyard serve` flag ({known:?})");
    }
}

/// `config check` on `text`, with the environment the deployment gives it.
fn assert_config_checks(text: &str, env: &[(&str, &str)], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = run(&["config", "check", "--config", path.to_str().unwrap()], env);
    assert_eq!(code, 0, "{what} fails `switchyard config check`:\n{out}{err}");
}

/// A filesystem laid out as the image's: `files` (image path → content) and empty `dirs`.
fn image_root(files: &[(&str, &str)], dirs: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = root.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    for dir in dirs {
        std::fs::create_dir_all(root.path().join(dir.trim_start_matches('/'))).unwrap();
    }
    root
}

/// The arguments after the binary, with every absolute path moved under `root`.
fn rebased(argv: &[String], root: &Path) -> Vec<String> {
    argv[1..]
        .iter()
        .map(|a| match a.strip_prefix('/') {
            Some(rel) => root.join(rel).to_string_lossy().into_owned(),
            None => a.clone(),
        })
        .collect()
}

#[test]
fn the_containerfile_runs_a_non_root_gateway_on_the_port_it_exposes() {
    let cf = Containerfile::load();
    assert_eq!(cf.from, "scratch");
    assert!(!cf.keywords.contains(&"RUN".to_owned()), "no RUN step: {:?}", cf.keywords);
    let (uid, _) = cf.user.split_once(':').unwrap_or((&cf.user, ""));
    let uid: u32 = uid.parse().expect("a numeric USER (no name lookup in a scratch image)");
    assert_ne!(uid, 0, "USER must not be root");

    let argv = cf.effective(None, None);
    assert_serve_flags(&argv, "ENTRYPOINT + CMD");
    assert!(cf.copies.iter().any(|(_, dst)| dst == BINARY), "{:?}", cf.copies);
    assert_eq!(flag(&argv, "--host").as_deref(), Some("0.0.0.0"), "{argv:?}");
    let port = port_of(&argv);
    assert_eq!(cf.expose, [port], "EXPOSE is the --port of the ENTRYPOINT");

    let state = flag(&argv, "--state-dir").expect("--state-dir");
    let config = PathBuf::from(flag(&argv, "--config").expect("--config"));
    assert!(cf.volumes.contains(&state), "VOLUME {:?} holds --state-dir {state}", cf.volumes);
    let config_dir = config.parent().unwrap().to_str().unwrap().to_owned();
    assert!(cf.volumes.contains(&config_dir), "VOLUME {:?} holds {config_dir}", cf.volumes);
    assert!(
        cf.copies.iter().any(|(_, dst)| Path::new(dst) == config),
        "the image has a default config at {}",
        config.display()
    );

    // The HEALTHCHECK is the binary's own subcommand, aimed at the served port.
    let hc = &cf.healthcheck;
    assert_eq!(hc[0], BINARY, "{hc:?}");
    assert!(subcommands().contains(&hc[1]), "`{}` is not a switchyard subcommand", hc[1]);
    for f in flags(&hc[2..]) {
        assert!(help_flags(&hc[1]).contains(&f), "{f} is not a flag of `switchyard {}`", hc[1]);
    }
    let url = flag(hc, "--url").expect("--url");
    assert!(url.ends_with(&format!(":{port}")), "{url} is not port {port}");

    // The build script puts the repository's default config where the image's COPY takes it.
    let script = read("scripts/build-image");
    assert!(script.contains("cp deploy/gateway/config.yaml \"$ctx/config.yaml\""));
    assert!(cf.copies.contains(&("config.yaml".to_owned(), config.to_str().unwrap().to_owned())));
}

#[test]
fn the_image_command_serves_the_default_config_and_answers_its_healthcheck() {
    let cf = Containerfile::load();
    let argv = cf.effective(None, None);
    let config = flag(&argv, "--config").unwrap();
    let state = flag(&argv, "--state-dir").unwrap();
    let root = image_root(&[(&config, &read("deploy/gateway/config.yaml"))], &[&state]);
    // The image's exact arguments, then `--port 0` as a container's own arguments would add
    // it: the last value wins, so a LiteLLM-style `--port` works after the ENTRYPOINT.
    let mut args = rebased(&argv, root.path());
    args.extend(["--port".to_owned(), "0".to_owned()]);
    let mut env: Vec<(String, String)> = cf.env.clone();

    // Without a master key the image refuses to listen on 0.0.0.0.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(&args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root.path())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(69));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("LITELLM_MASTER_KEY"));

    env.push(("LITELLM_MASTER_KEY".to_owned(), KEY.to_owned()));
    let gateway = Gateway::start(&args, &env, root.path());
    let anyone = client(&gateway.url, None);
    let live = anyone.probe("/health/liveliness", PATIENCE).unwrap();
    assert_eq!((live.status, live.body.as_str()), (200, Some("I'm alive!")));
    assert_eq!(anyone.probe("/health/readiness", PATIENCE).unwrap().status, 200);
    let models = client(&gateway.url, Some(KEY)).get("/v1/models", PATIENCE).unwrap();
    let ids: Vec<&str> =
        models.body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cheap", "balanced", "frontier"], "{}", models.body);
    // The key store went to the state directory the volume holds.
    assert!(root.path().join(state.trim_start_matches('/')).join("keys.sqlite3").exists());

    // The HEALTHCHECK command, aimed at this gateway.
    let mut hc: Vec<String> = cf.healthcheck[1..].to_vec();
    let at = hc.iter().position(|a| a == "--url").unwrap() + 1;
    hc[at] = gateway.url.clone();
    let hc: Vec<&str> = hc.iter().map(String::as_str).collect();
    let (code, out, err) = run(&hc, &[]);
    assert_eq!(code, 0, "{out}{err}");

    assert_eq!(gateway.stop(), 0, "a SIGTERM stop is clean");
    let (code, _, err) = run(&hc, &[]);
    assert_eq!(code, 3, "nothing answers: {err}");
    assert!(err.contains("GW-04") && err.contains("fix:"), "{err}");
}

struct Kube {
    deployment: Value,
    service: Value,
    configmap: Value,
    secret: Value,
    others: Vec<Value>,
}

fn kube() -> Kube {
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml");
    let listed: BTreeSet<String> = strings(&kustomization["resources"]).into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");
    let mut docs: Vec<Value> =
        listed.iter().flat_map(|f| yaml_docs(&format!("deploy/kubernetes/{f}"))).collect();
    let mut take = |kind: &str| {
        let at = docs.iter().position(|d| d["kind"] == kind).unwrap_or_else(|| panic!("{kind}"));
        docs.remove(at)
    };
    Kube {
        deployment: take("Deployment"),
        service: take("Service"),
        configmap: take("ConfigMap"),
        secret: take("Secret"),
        others: docs,
    }
}

impl Kube {
    fn kind(&self, kind: &str) -> &Value {
        self.others.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
    }

    fn pod(&self) -> &Value {
        &self.deployment["spec"]["template"]
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        &containers[0]
    }

    fn argv(&self) -> Vec<String> {
        let c = self.container();
        let cf = Containerfile::load();
        cf.effective(c.get("command").map(strings), c.get("args").map(strings))
    }

    /// A container port by name or number.
    fn container_port(&self, port: &Value) -> u64 {
        if let Some(n) = port.as_u64() {
            return n;
        }
        let ports = self.container()["ports"].as_array().unwrap();
        let named = ports.iter().find(|p| p["name"] == *port).unwrap_or_else(|| panic!("{port}"));
        named["containerPort"].as_u64().unwrap()
    }

    fn config_text(&self) -> String {
        let argv = self.argv();
        let config = PathBuf::from(flag(&argv, "--config").unwrap());
        let name = config.file_name().unwrap().to_str().unwrap();
        self.configmap["data"][name].as_str().unwrap_or_else(|| panic!("no {name}")).to_owned()
    }

    fn secret_value(&self, key: &str) -> String {
        self.secret["stringData"][key].as_str().unwrap_or_else(|| panic!("no {key}")).to_owned()
    }

    /// The environment the container gets, Secret references resolved from the example.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for e in self.container()["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_owned();
            let value = match e.get("value") {
                Some(v) => v.as_str().unwrap().to_owned(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    assert_eq!(r["name"], self.secret["metadata"]["name"], "{name}");
                    self.secret_value(r["key"].as_str().unwrap())
                }
            };
            env.push((name, value));
        }
        env
    }
}

#[test]
fn the_kubernetes_manifests_agree_with_the_image_and_the_binary() {
    let k = kube();
    let argv = k.argv();
    assert_serve_flags(&argv, "the Deployment's command line");
    let port = u64::from(port_of(&argv));
    assert!(k.deployment["spec"]["replicas"].as_u64().unwrap() >= 2);

    // One port everywhere: the --port served, the container port, the Service's target and
    // every probe.
    let c = k.container();
    assert_eq!(c["ports"].as_array().unwrap().len(), 1);
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    let sp = &k.service["spec"]["ports"].as_array().unwrap()[0];
    assert_eq!(k.container_port(&sp["targetPort"]), port, "Service targetPort");
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(k.container_port(&c[probe]["httpGet"]["port"]), port, "{probe}");
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/health/readiness");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/health/liveliness");

    // The stop: preStop sleep, then the drain grace, then the drain timeout, all before the
    // kubelet's SIGKILL.
    let pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().expect("preStop sleep");
    let grace = secs(&argv, "--drain-grace", 0);
    let timeout = secs(&argv, "--drain-timeout", 30);
    let termination = k.pod()["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > 0, "readiness goes 503 before the listener closes");
    assert!(
        termination > pre_stop + grace + timeout,
        "terminationGracePeriodSeconds {termination} leaves no margin after preStop {pre_stop} \
         + drain grace {grace} + drain timeout {timeout}"
    );

    // Not root, nothing writable but the volumes.
    let uid = Containerfile::load().user.split(':').next().unwrap().parse::<u64>().unwrap();
    let pod_sc = &k.pod()["spec"]["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], true);
    assert_eq!(pod_sc["runAsUser"].as_u64(), Some(uid));
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(c["resources"]["requests"]["cpu"].is_string(), "the HPA needs a CPU request");

    // The config is the ConfigMap mounted as a directory (a subPath never sees updates), the
    // state directory an emptyDir.
    let volume = |mount_path: &str| -> Value {
        let mounts = c["volumeMounts"].as_array().unwrap();
        let m = mounts
            .iter()
            .find(|m| m["mountPath"] == mount_path)
            .unwrap_or_else(|| panic!("{mount_path}"));
        assert!(m.get("subPath").is_none(), "{mount_path} is mounted whole");
        let volumes = k.pod()["spec"]["volumes"].as_array().unwrap();
        volumes.iter().find(|v| v["name"] == m["name"]).unwrap().clone()
    };
    let config = PathBuf::from(flag(&argv, "--config").unwrap());
    let config_volume = volume(config.parent().unwrap().to_str().unwrap());
    assert_eq!(config_volume["configMap"]["name"], k.configmap["metadata"]["name"]);
    assert!(volume(&flag(&argv, "--state-dir").unwrap()).get("emptyDir").is_some());

    // Every variable set is one the gateway reads; every Secret reference exists.
    let config_text = k.config_text();
    let env = k.env();
    for (name, _) in &env {
        assert!(gateway_reads(name, &config_text), "the gateway never reads {name}");
    }

    // The config loads, with the environment the pod gives it.
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_config_checks(&config_text, &env_refs, "the ConfigMap's config.yaml");

    // Everything else selects these pods, this Deployment and this Service's port.
    let labels = &k.pod()["metadata"]["labels"];
    let selects = |selector: &Value| {
        let m = selector["matchLabels"].as_object().unwrap();
        assert!(!m.is_empty());
        m.iter().all(|(key, v)| labels[key] == *v)
    };
    assert!(selects(&k.deployment["spec"]["selector"]));
    let svc_selector = k.service["spec"]["selector"].as_object().unwrap();
    assert!(svc_selector.iter().all(|(key, v)| labels[key] == *v));
    assert!(selects(&k.kind("PodDisruptionBudget")["spec"]["selector"]));
    let hpa = &k.kind("HorizontalPodAutoscaler")["spec"];
    assert_eq!(hpa["scaleTargetRef"]["name"], k.deployment["metadata"]["name"]);
    assert!(hpa["minReplicas"].as_u64().unwrap() >= 2);
    assert_eq!(hpa["metrics"][0]["resource"]["name"], "cpu");
    let monitor = k.kind("ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    let service_labels = &k.service["metadata"]["labels"];
    let m = monitor["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(
        m.iter().all(|(key, v)| service_labels[key] == *v),
        "the ServiceMonitor selects the Service"
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], sp["name"]);
    assert_eq!(endpoint["path"], "/metrics");

    // Started as the pod starts it: the probes answer without a key, and /metrics answers the
    // ServiceMonitor's bearer token (the Secret's master key) and nobody else.
    let root = image_root(
        &[(config.to_str().unwrap(), &config_text)],
        &[&flag(&argv, "--state-dir").unwrap()],
    );
    let mut args = rebased(&argv, root.path());
    args.extend(["--port".to_owned(), "0".to_owned()]);
    let mut env = env;
    env.retain(|(name, _)| {
        !["DATABASE_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"].contains(&name.as_str())
    });
    env.extend(Containerfile::load().env);
    let gateway = Gateway::start(&args, &env, root.path());
    let anyone = client(&gateway.url, None);
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(anyone.probe(path, PATIENCE).unwrap().status, 200, "{probe} {path}");
    }
    let metrics_path = endpoint["path"].as_str().unwrap();
    let metrics_auth = config_text.contains("require_auth_for_metrics_endpoint: true");
    if metrics_auth {
        assert_eq!(anyone.probe(metrics_path, PATIENCE).unwrap().status, 401);
        let creds = &endpoint["authorization"]["credentials"];
        assert_eq!(endpoint["authorization"]["type"], "Bearer");
        assert_eq!(creds["name"], k.secret["metadata"]["name"]);
        let token = k.secret_value(creds["key"].as_str().unwrap());
        assert_eq!(
            client(&gateway.url, Some(&token)).get(metrics_path, PATIENCE).unwrap().status,
            200
        );
    } else {
        assert_eq!(anyone.probe(metrics_path, PATIENCE).unwrap().status, 200);
    }
    assert_eq!(gateway.stop(), 0);
}

#[test]
fn the_compose_file_prometheus_and_nginx_agree_on_the_replicas() {
    let compose = yaml("deploy/compose.yaml");
    let services = compose["services"].as_object().unwrap();
    let cf = Containerfile::load();
    let gateways: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.contains("switchyard")))
        .collect();
    assert!(gateways.len() >= 2, "two replicas or more");
    let config_text = read("deploy/gateway/config.yaml");
    let example = read("deploy/switchyard.env.example");
    let mut targets = BTreeSet::new();
    for (name, s) in &gateways {
        let argv = cf.effective(s.get("entrypoint").map(strings), s.get("command").map(strings));
        assert_serve_flags(&argv, name);
        let port = port_of(&argv);
        targets.insert(format!("{name}:{port}"));

        // Healthy by the image's own probe, on the served port.
        let test = strings(&s["healthcheck"]["test"]);
        assert_eq!(test[..3], ["CMD", BINARY, "health"], "{name}");
        assert!(flag(&test, "--url").unwrap().ends_with(&format!(":{port}")), "{name}: {test:?}");

        // The runtime's SIGKILL comes after the drain grace and the drain timeout.
        let grace_period = s["stop_grace_period"].as_str().unwrap();
        let stop: u64 = grace_period.strip_suffix('s').unwrap().parse().unwrap();
        let (grace, timeout) =
            (secs(&argv, "--drain-grace", 0), secs(&argv, "--drain-timeout", 30));
        assert!(stop > grace + timeout, "{name}: stop_grace_period {stop}s <= {grace} + {timeout}");

        // PostgreSQL and Redis are healthy first, and have a healthcheck that says so.
        for dep in ["postgres", "redis"] {
            assert_eq!(s["depends_on"][dep]["condition"], "service_healthy", "{name} → {dep}");
            assert!(services[dep]["healthcheck"]["test"].is_array(), "{dep} healthcheck");
        }

        // The config directory is mounted read-only where --config points, and holds it.
        let config = PathBuf::from(flag(&argv, "--config").unwrap());
        let dir = config.parent().unwrap().to_str().unwrap();
        let mount = strings(&s["volumes"])
            .into_iter()
            .find(|v| v.split(':').nth(1) == Some(dir))
            .unwrap_or_else(|| panic!("{name} mounts nothing at {dir}"));
        assert!(mount.ends_with(":ro"), "{mount}");
        let host_dir = repo().join("deploy").join(mount.split(':').next().unwrap());
        let served = host_dir.join(config.file_name().unwrap());
        assert_eq!(std::fs::read_to_string(&served).unwrap(), config_text, "{}", served.display());
        let state = flag(&argv, "--state-dir").unwrap();
        assert!(
            strings(&s["volumes"]).iter().any(|v| v.ends_with(&format!(":{state}"))),
            "{name} state volume"
        );

        // Every variable it gets is one the gateway reads.
        let mut vars: Vec<String> = s["environment"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(s["env_file"], "switchyard.env");
        vars.extend(
            example
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains('='))
                .map(|l| l.split('=').next().unwrap().to_owned()),
        );
        for var in vars {
            assert!(gateway_reads(&var, &config_text), "{name}: the gateway never reads {var}");
        }
    }
    let env: Vec<(&str, &str)> = vec![("LITELLM_MASTER_KEY", KEY)];
    assert_config_checks(&config_text, &env, "deploy/gateway/config.yaml");

    // Prometheus scrapes each replica directly.
    let prometheus = yaml("deploy/prometheus.yml");
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    let scraped: BTreeSet<String> =
        strings(&job["static_configs"][0]["targets"]).into_iter().collect();
    assert_eq!(scraped, targets, "prometheus.yml targets");
    assert!(
        strings(&services["prometheus"]["volumes"])
            .iter()
            .any(|v| v.starts_with("./prometheus.yml:"))
    );

    // nginx balances over exactly the replicas, without pooled upstream connections, with
    // streams unbuffered and only failed connections retried elsewhere.
    let nginx = read("deploy/nginx.conf");
    let code: String =
        nginx.lines().map(|l| l.split('#').next().unwrap()).collect::<Vec<_>>().join("\n");
    let upstream = code.split("upstream ").nth(1).unwrap().split('}').next().unwrap();
    let servers: BTreeSet<String> = upstream
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .map(|l| l.split_whitespace().next().unwrap().trim_end_matches(';').to_owned())
        .collect();
    assert_eq!(servers, targets, "nginx upstream servers");
    assert!(!upstream.contains("keepalive"), "no upstream keepalive");
    let directive = |name: &str| -> Vec<String> {
        code.lines()
            .map(str::trim)
            .filter(|l| l.starts_with(&format!("{name} ")))
            .map(|l| l.trim_end_matches(';').to_owned())
            .collect()
    };
    assert_eq!(directive("proxy_buffering"), ["proxy_buffering off"]);
    assert_eq!(directive("proxy_next_upstream"), ["proxy_next_upstream error non_idempotent"]);
    let read_timeout = directive("proxy_read_timeout");
    let read_secs: u64 =
        read_timeout[0].split_whitespace().nth(1).unwrap().trim_end_matches('s').parse().unwrap();
    assert!(read_secs >= 300, "long streams: {read_timeout:?}");
    let lb = &services["nginx"];
    assert!(
        strings(&lb["volumes"]).iter().any(|v| v.starts_with("./nginx.conf:/etc/nginx/nginx.conf"))
    );
    for (name, _) in &gateways {
        assert_eq!(lb["depends_on"][name.as_str()]["condition"], "service_healthy");
    }
}

/// A ConfigMap volume as the kubelet writes it: `config.yaml -> ..data/config.yaml`,
/// `..data -> ..<timestamp>`; an update writes a new timestamped directory and renames a
/// new `..data` symlink over the old one, then removes the old directory.
struct ConfigMapVolume {
    dir: tempfile::TempDir,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(text: &str) -> Self {
        let mut v = Self { dir: tempfile::tempdir().unwrap(), generation: 0 };
        v.publish(text);
        std::os::unix::fs::symlink("..data/config.yaml", v.dir.path().join("config.yaml")).unwrap();
        v
    }

    fn publish(&mut self, text: &str) {
        let old = format!("..2025_01_01_00_00_00.{}", self.generation);
        self.generation += 1;
        let new = format!("..2025_01_01_00_00_00.{}", self.generation);
        std::fs::create_dir(self.dir.path().join(&new)).unwrap();
        std::fs::write(self.dir.path().join(&new).join("config.yaml"), text).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
        if self.generation > 1 {
            std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }
}

fn mock_config(aliases: &[&str]) -> String {
    let mut text = String::from("model_list:\n");
    for alias in aliases {
        text.push_str(&format!(
            "  - model_name: {alias}\n    litellm_params:\n      model: anthropic/claude-haiku-4-5\n      mock_response: \"WORKS\"\n"
        ));
    }
    text.push_str(&format!("general_settings:\n  master_key: {KEY}\n"));
    text
}

fn aliases(url: &str) -> Vec<String> {
    let models = client(url, Some(KEY)).get("/v1/models", PATIENCE).unwrap();
    models.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_configmap_update_by_symlink_swap_is_reloaded() {
    let mut volume = ConfigMapVolume::new(&mock_config(&["first"]));
    let state = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "serve",
        "--config",
        volume.config().to_str().unwrap(),
        "--port",
        "0",
        "--state-dir",
        state.path().to_str().unwrap(),
        "--watch-interval-ms",
        "100",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let gateway = Gateway::start(&args, &[], state.path());
    assert_eq!(aliases(&gateway.url), ["first"]);

    volume.publish(&mock_config(&["first", "second"]));
    let deadline = Instant::now() + PATIENCE;
    while aliases(&gateway.url) != ["first", "second"] {
        assert!(
            Instant::now() < deadline,
            "the swapped config was never served:\n{}",
            gateway.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = client(&gateway.url, Some(KEY)).get("/config/status", PATIENCE).unwrap();
    assert_eq!(status.body["last_reload"]["trigger"], "file change", "{}", status.body);
    assert_eq!(status.body["last_reload"]["ok"], true);

    // A second update, after the first update's directory was removed.
    volume.publish(&mock_config(&["third"]));
    let deadline = Instant::now() + PATIENCE;
    while aliases(&gateway.url) != ["third"] {
        assert!(
            Instant::now() < deadline,
            "the second swap was never served:\n{}",
            gateway.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(gateway.stop(), 0);
}
