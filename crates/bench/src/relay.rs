//! `--compare relay`: the same-dialect fast path. One mock, three gateways on it — relaying
//! (the default), translating (`disable_same_dialect_relay: true`) and relaying with the
//! production features on (a virtual key with a budget and an rpm limit, the ledger on
//! PostgreSQL, metrics, every request traced) — and, with `--peer-cmd`, another gateway
//! (LiteLLM-Rust, say) pointed at the same mock. Both surfaces: `/v1/messages` on the mock's
//! Anthropic API, `/v1/chat/completions` on its OpenAI-compatible one, each with its floor.
//! The bare gateways run without ledger or metrics, so "production" measures what they add.
//! Rounds rotate over every lane. `--load oha` drives them with oha instead of the built-in
//! generator (`oha.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use bench::load::{self, Outcome, Round, Target};
use bench::procs::{self, Proc};
use bench::report::{Machine, Side};

use crate::compare::{Compared, Database, Settings, per_request_us, virtual_key};
use crate::oha::{self, Load, OhaTotal};
use crate::surfaces::{Answer, Lane, Measured, Role, render, verify};
use crate::{MASTER_KEY, MODEL, UPSTREAM_KEY, header};

/// The OpenAI-compatible deployment's model at the mock.
const OPENAI_MODEL: &str = "gpt-4o-mini";

fn config(mock: SocketAddr, settings: &str) -> String {
    format!(
        "model_list:\n\
         \x20 - model_name: cheap\n    litellm_params:\n      model: anthropic/{MODEL}\n      \
         api_base: http://{mock}\n      api_key: {UPSTREAM_KEY}\n\
         \x20 - model_name: fast\n    litellm_params:\n      model: openai/{OPENAI_MODEL}\n      \
         api_base: http://{mock}/v1\n      api_key: {UPSTREAM_KEY}\n\
         general_settings:\n  master_key: {MASTER_KEY}\n{settings}"
    )
}

/// The gateways a lane can go to, by index into the started ones.
const RELAYED: usize = 0;
const TRANSLATED: usize = 1;
const PRODUCTION: usize = 2;

pub async fn relay(
    s: &Settings<'_>,
    peer_cmd: Option<&str>,
    load: &Load,
) -> Result<Compared, String> {
    let machine = Machine::read();
    let db = Database::create(s.database_url).await?;
    let result = run(s, &machine, &db, peer_cmd, load).await;
    db.drop_it().await;
    result
}

async fn run(
    s: &Settings<'_>,
    machine: &Machine,
    db: &Database,
    peer_cmd: Option<&str>,
    load: &Load,
) -> Result<Compared, String> {
    let mock = procs::start_mock(s.bins)?;
    let bare = "  disable_spend_logs: true\n  disable_metrics: true\n";
    let production = format!(
        "  database_url: {}\nlitellm_settings:\n  callbacks: [\"otel\"]\nenvironment_variables:\n  \
         OTEL_EXPORTER_OTLP_ENDPOINT: http://{}\n",
        db.url(),
        mock.addr
    );
    let setups = [
        ("relayed", bare.to_owned()),
        ("translated", format!("{bare}  disable_same_dialect_relay: true\n")),
        ("production", production),
    ];
    let mut servers = Vec::new();
    for (name, settings) in &setups {
        let dir = s.work.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, config(mock.addr, settings)).map_err(|e| e.to_string())?;
        servers.push(procs::start_gateway_in(s.bins, &path, &dir.join("gateway.log"), Some(&dir))?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let key = virtual_key(&servers[PRODUCTION]).await?;
    if let Some(command) = peer_cmd {
        servers.push(procs::start_peer(command, mock.addr, &s.work.join("peer.log"))?);
    }
    let gateways: Vec<SocketAddr> = servers.iter().map(|p| p.addr).collect();
    let result = match check(s, &mock, &gateways, &key).await {
        Ok(()) => rotate(s, &mock, &servers, &key, load).await,
        Err(e) => Err(e),
    };
    drop(servers);
    drop(mock);
    let (results, shares) = result?;
    let mut title = "The same-dialect fast path: relayed (baseline), translated, and relayed with \
                     the production features on (a virtual key with a budget and an rpm limit, \
                     the ledger on PostgreSQL, metrics, traces); the bare gateways have no \
                     ledger or metrics."
        .to_owned();
    if let Load::Oha(oha) = load {
        title.push_str(&format!(
            " Load from oha ({}): percentiles are the rounds' own, weighted by their answers; a \
             stream's first byte is oha's.",
            oha.display()
        ));
    }
    let (mut markdown, json) = render(s, machine, &title, &results);
    markdown.push_str(&shares_table(&shares));
    let failure = results.iter().find(|r| r.side.errors > 0).map(|r| {
        format!(
            "{} request(s) failed ({} {}, {} clients): {}",
            r.side.errors,
            r.deployment,
            r.route,
            r.concurrency,
            r.side.first_error.as_deref().unwrap_or("no detail")
        )
    });
    let generator = match load {
        Load::Builtin => "builtin",
        Load::Oha(_) => "oha",
    };
    Ok(Compared {
        markdown,
        failure,
        json: json!({"compare": "relay", "load": generator, "rows": json}),
    })
}

/// A lane and the process whose CPU it is charged with (an index into the servers, or the
/// mock for a floor).
struct Routed {
    lane: Lane,
    server: Option<usize>,
}

fn lanes(
    mock: SocketAddr,
    gateways: &[SocketAddr],
    key: &str,
    streaming: bool,
) -> Result<Vec<Routed>, String> {
    let stream = if streaming { r#","stream":true"# } else { "" };
    let question = r#""messages":[{"role":"user","content":"Say: WORKS"}]"#;
    let anthropic_tail: &'static [u8] = if streaming { br#""message_stop"}"# } else { b"}}" };
    let openai_tail: &'static [u8] = if streaming { b"data: [DONE]" } else { b"}" };
    let target = |addr, path: &str, headers, body: String, expect_tail| Target {
        addr,
        path: path.to_owned(),
        headers,
        body: bytes::Bytes::from(body),
        streaming,
        expect_tail,
        tls: None,
    };
    let version = || header("anthropic-version", "2023-06-01");
    let messages =
        |model: &str| format!(r#"{{"model":"{model}","max_tokens":10,{question}{stream}}}"#);
    let chat = |model: &str| format!(r#"{{"model":"{model}","max_tokens":10,{question}{stream}}}"#);
    let bearer = |k: &str| header("authorization", &format!("Bearer {k}"));
    let mut out = Vec::new();
    let mut add = |deployment, route, role, server, target| {
        out.push(Routed {
            lane: Lane { deployment, route, role, target, answer: Answer::Text },
            server,
        });
    };
    let anthropic = "Anthropic /v1/messages";
    add(
        anthropic,
        "mock",
        Role::Floor,
        None,
        target(
            mock,
            "/v1/messages",
            vec![header("x-api-key", UPSTREAM_KEY)?, version()?],
            messages(MODEL),
            anthropic_tail,
        ),
    );
    add(
        anthropic,
        "relayed",
        Role::Baseline,
        Some(RELAYED),
        target(
            gateways[RELAYED],
            "/v1/messages",
            vec![header("x-api-key", MASTER_KEY)?, version()?],
            messages("cheap"),
            anthropic_tail,
        ),
    );
    add(
        anthropic,
        "translated",
        Role::Contender,
        Some(TRANSLATED),
        target(
            gateways[TRANSLATED],
            "/v1/messages",
            vec![header("x-api-key", MASTER_KEY)?, version()?],
            messages("cheap"),
            anthropic_tail,
        ),
    );
    add(
        anthropic,
        "production features",
        Role::Contender,
        Some(PRODUCTION),
        target(
            gateways[PRODUCTION],
            "/v1/messages",
            vec![header("x-api-key", key)?, version()?],
            messages("cheap"),
            anthropic_tail,
        ),
    );
    if let Some(&peer) = gateways.get(PRODUCTION + 1) {
        add(
            anthropic,
            "peer (--peer-cmd)",
            Role::Contender,
            Some(PRODUCTION + 1),
            target(
                peer,
                "/v1/messages",
                vec![header("x-api-key", MASTER_KEY)?, version()?],
                messages("cheap"),
                anthropic_tail,
            ),
        );
    }
    let openai = "OpenAI /v1/chat/completions";
    add(
        openai,
        "mock",
        Role::Floor,
        None,
        target(
            mock,
            "/v1/chat/completions",
            vec![bearer(UPSTREAM_KEY)?],
            chat(OPENAI_MODEL),
            openai_tail,
        ),
    );
    add(
        openai,
        "relayed",
        Role::Baseline,
        Some(RELAYED),
        target(
            gateways[RELAYED],
            "/v1/chat/completions",
            vec![bearer(MASTER_KEY)?],
            chat("fast"),
            openai_tail,
        ),
    );
    add(
        openai,
        "translated",
        Role::Contender,
        Some(TRANSLATED),
        target(
            gateways[TRANSLATED],
            "/v1/chat/completions",
            vec![bearer(MASTER_KEY)?],
            chat("fast"),
            openai_tail,
        ),
    );
    add(
        openai,
        "production features",
        Role::Contender,
        Some(PRODUCTION),
        target(
            gateways[PRODUCTION],
            "/v1/chat/completions",
            vec![bearer(key)?],
            chat("fast"),
            openai_tail,
        ),
    );
    Ok(out)
}

/// One request of every lane, its whole answer checked.
async fn check(
    s: &Settings<'_>,
    mock: &Proc,
    gateways: &[SocketAddr],
    key: &str,
) -> Result<(), String> {
    for &streaming in s.modes {
        for r in lanes(mock.addr, gateways, key, streaming)? {
            let (status, body) = load::fetch(&r.lane.target).await?;
            verify(r.lane.answer, status, &body).map_err(|why| {
                format!("{} {} answers wrong: {why}", r.lane.deployment, r.lane.route)
            })?;
        }
    }
    Ok(())
}

async fn rotate(
    s: &Settings<'_>,
    mock: &Proc,
    servers: &[Proc],
    key: &str,
    load: &Load,
) -> Result<(Vec<Measured>, Vec<Shares>), String> {
    let round = Round {
        concurrency: 0,
        warmup: Duration::from_secs_f64((s.seconds / 5.0).clamp(0.2, 1.0)),
        duration: Duration::from_secs_f64(s.seconds),
    };
    let share = round.duration.as_secs_f64() / (round.duration + round.warmup).as_secs_f64();
    let gateways: Vec<SocketAddr> = servers.iter().map(|p| p.addr).collect();
    let mut results = Vec::new();
    let mut shares = Vec::new();
    for &streaming in s.modes {
        let lanes = lanes(mock.addr, &gateways, key, streaming)?;
        let targets: Vec<Arc<Target>> =
            lanes.iter().map(|r| Arc::new(r.lane.target.clone())).collect();
        for &concurrency in s.concurrency {
            let round = Round { concurrency, ..round };
            let mut outcomes: Vec<Option<Outcome>> = lanes.iter().map(|_| None).collect();
            let mut oha_totals: Vec<OhaTotal> = lanes.iter().map(|_| OhaTotal::default()).collect();
            let mut cpu = vec![0.0; lanes.len()];
            // The mock's and PostgreSQL's CPU during each lane: the upstream (and, for the
            // production features, the trace collector and the ledger's database) share
            // the machine's cores with the gateway, so their work per request counts too.
            let mut mock_cpu = vec![0.0; lanes.len()];
            let mut db_cpu = vec![0.0; lanes.len()];
            let mut peak = vec![0u64; lanes.len()];
            for rep in 0..s.reps {
                for k in 0..lanes.len() {
                    let i = (k + rep) % lanes.len();
                    let r = &lanes[i];
                    let server = r.server.map_or(mock, |g| &servers[g]);
                    eprintln!(
                        "bench: relay {} {}, {concurrency} clients, round {}",
                        r.lane.deployment,
                        r.lane.route,
                        rep + 1
                    );
                    server.reset_peak().ok();
                    // oha's warm-up is a run of its own, before the CPU readings.
                    if let Load::Oha(oha) = load {
                        oha::run(oha, &targets[i], concurrency, round.warmup).await?;
                    }
                    let before = server.cpu_seconds()?;
                    let (mock_before, db_before) =
                        (mock.cpu_seconds()?, procs::postgres_cpu_seconds());
                    let share = match load {
                        Load::Builtin => {
                            let o = load::run(Arc::clone(&targets[i]), round).await;
                            match &mut outcomes[i] {
                                None => outcomes[i] = Some(o),
                                Some(total) => total.merge(&o),
                            }
                            share
                        }
                        Load::Oha(oha) => {
                            let run = oha::run(oha, &targets[i], concurrency, round.duration);
                            oha_totals[i].add(&run.await?);
                            1.0
                        }
                    };
                    cpu[i] += (server.cpu_seconds()? - before) * share;
                    mock_cpu[i] += (mock.cpu_seconds()? - mock_before) * share;
                    db_cpu[i] += (procs::postgres_cpu_seconds() - db_before) * share;
                    peak[i] = peak[i].max(server.memory()?.peak);
                }
            }
            for (i, r) in lanes.iter().enumerate() {
                let (side, requests) = match load {
                    Load::Builtin => {
                        let o = outcomes[i].take().unwrap_or_else(Outcome::empty);
                        (Side::new(&o, streaming), o.requests)
                    }
                    Load::Oha(_) => (oha_totals[i].side(streaming), oha_totals[i].requests()),
                };
                results.push(Measured {
                    deployment: r.lane.deployment,
                    route: r.lane.route,
                    role: r.lane.role,
                    streaming,
                    concurrency,
                    side,
                    cpu_us: per_request_us(cpu[i], requests),
                    peak_rss: r.server.map(|_| peak[i]),
                });
                shares.push(Shares {
                    mode: if streaming { "stream" } else { "json" },
                    concurrency,
                    deployment: r.lane.deployment,
                    route: r.lane.route,
                    gateway: r.server.map(|_| per_request_us(cpu[i], requests)),
                    mock: per_request_us(mock_cpu[i], requests),
                    database: per_request_us(db_cpu[i], requests),
                });
            }
        }
    }
    Ok((results, shares))
}

/// Where one lane's CPU went, per request: the gateway (`None` for a floor), the mock (the
/// upstream, and the trace collector) and the PostgreSQL server.
struct Shares {
    mode: &'static str,
    concurrency: usize,
    deployment: &'static str,
    route: &'static str,
    gateway: Option<f64>,
    mock: f64,
    database: f64,
}

/// The shares as a table: what the production features cost outside the gateway too.
fn shares_table(shares: &[Shares]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "\nCPU per request by process (µs; PostgreSQL is the whole server, so other clients' \
         work during a round lands there too):\n\n\
         | mode | clients | deployment | route | gateway | mock | PostgreSQL | total |\n\
         |---|--:|---|---|--:|--:|--:|--:|\n",
    );
    for r in shares {
        let gateway = r.gateway.unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            r.mode,
            r.concurrency,
            r.deployment,
            r.route,
            r.gateway.map_or_else(|| "—".to_owned(), |g| format!("{g:.1}")),
            r.mock,
            r.database,
            gateway + r.mock + r.database,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use switchyard::config::{self, MapEnv, ProviderKind};

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_configs_put_both_surfaces_deployments_on_the_mock() {
        for settings in ["  disable_same_dialect_relay: true\n", ""] {
            let yaml = config(addr(4010), settings);
            let env = MapEnv::new([("HOME", "/nonexistent")]);
            let cfg = config::load_from_str(&yaml, Path::new("relay.yaml"), &env)
                .unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
            let group = |name: &str| {
                let group = cfg.groups.iter().find(|g| g.name == name);
                group.unwrap_or_else(|| panic!("no group {name}")).deployments[0].clone()
            };
            assert_eq!(group("cheap").provider, ProviderKind::Anthropic);
            assert!(matches!(group("fast").provider, ProviderKind::OpenAi(_)));
            assert_eq!(cfg.general.same_dialect_relay, settings.is_empty());
        }
    }

    #[test]
    fn every_surface_has_one_floor_at_the_mock_and_one_baseline() {
        let gateways = [addr(4020), addr(4021), addr(4022), addr(4023)];
        for streaming in [false, true] {
            let lanes = lanes(addr(4010), &gateways, "sk-virtual", streaming)
                .unwrap_or_else(|e| panic!("{e}"));
            for surface in ["Anthropic /v1/messages", "OpenAI /v1/chat/completions"] {
                let of = |role| {
                    lanes
                        .iter()
                        .filter(move |r| r.lane.deployment == surface && r.lane.role == role)
                };
                assert_eq!(of(Role::Floor).count(), 1, "{surface}");
                assert!(
                    of(Role::Floor)
                        .all(|r| r.server.is_none() && r.lane.target.addr.port() == 4010)
                );
                assert_eq!(of(Role::Baseline).count(), 1, "{surface}");
                assert!(of(Role::Baseline).all(|r| r.server == Some(RELAYED)));
            }
            // The peer serves the Anthropic surface only.
            let peer = lanes.iter().filter(|r| r.server == Some(PRODUCTION + 1)).count();
            assert_eq!(peer, 1);
        }
    }
}
