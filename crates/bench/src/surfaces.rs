//! `--compare surfaces`: the request surfaces other than `/v1/chat/completions`, each against
//! the baseline of its own deployment, measured in the same run on one gateway:
//!
//! - an Anthropic deployment: `/anthropic/v1/messages` (the byte relay) and
//!   `/v1/chat/completions` against `/v1/messages`;
//! - a Bedrock deployment: `/bedrock/model/{id}/invoke` (and `…/invoke-with-response-stream`)
//!   against `/v1/messages`;
//! - an OpenAI-compatible embedding deployment: `/v1/embeddings`, floats and base64, against
//!   the mock itself (no other gateway route does the same work).
//!
//! Each deployment also has its floor: the request the gateway sends upstream, sent straight
//! to the mock. Rounds rotate over every lane (floors and gateway routes alike), so a busy
//! machine slows all of them alike. The ledger is off (its cost is `--compare ledger`'s).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use bench::load::{self, Outcome, Round, Target};
use bench::procs::{self, Proc};
use bench::report::{self, Machine, Side};

use crate::compare::{Compared, Settings, per_request_us};
use crate::{MASTER_KEY, MODEL, UPSTREAM_KEY, header};

/// The Bedrock API key the mock accepts (`--bedrock-api-key`) and the deployment sends.
pub(crate) const BEDROCK_KEY: &str = "ABSKbenchmark0000000000000000";
/// The Bedrock model id, as Claude Code names it; `:` goes percent-encoded in paths, as the
/// SDKs and the gateway send it.
pub(crate) const BEDROCK_MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
const BEDROCK_PATH_ID: &str = "us.anthropic.claude-haiku-4-5-20251001-v1%3A0";
pub(crate) const EMBEDDING_MODEL: &str = "text-embedding-3-small";

/// The gateway's config: `cheap` on the mock's Anthropic API, `bedrock-haiku` on its Bedrock
/// runtime (a Bedrock API key, so the floor can send the very request the gateway sends),
/// `embed` on its OpenAI-compatible embeddings; the master key; the ledger off.
pub(crate) fn config(mock: SocketAddr) -> String {
    format!(
        "model_list:\n\
         \x20 - model_name: cheap\n    litellm_params:\n      model: anthropic/{MODEL}\n      \
         api_base: http://{mock}\n      api_key: {UPSTREAM_KEY}\n\
         \x20 - model_name: bedrock-haiku\n    litellm_params:\n      model: bedrock/{BEDROCK_MODEL}\n      \
         aws_region_name: us-east-1\n      aws_bedrock_runtime_endpoint: http://{mock}\n      \
         api_key: {BEDROCK_KEY}\n\
         \x20 - model_name: embed\n    litellm_params:\n      model: openai/{EMBEDDING_MODEL}\n      \
         api_base: http://{mock}/v1\n      api_key: {UPSTREAM_KEY}\n    model_info:\n      \
         mode: embedding\n\
         general_settings:\n  master_key: {MASTER_KEY}\n  disable_spend_logs: true\n"
    )
}

/// What a lane is to its deployment's other lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Straight to the mock: the request the gateway sends upstream.
    Floor,
    /// Through the gateway: what the other routes of the deployment are divided by.
    Baseline,
    /// Through the gateway: the route being measured.
    Contender,
}

/// One kind of request, a row of the table.
pub(crate) struct Lane {
    /// The deployment (and upstream API) the lane's requests end at.
    pub deployment: &'static str,
    pub route: &'static str,
    pub role: Role,
    pub target: Target,
    /// What a correct answer holds, checked once on a whole body before the rounds.
    pub answer: Answer,
}

/// What a lane's answer is checked for before its rounds; in the rounds only its status and
/// tail are (`Target::expect_tail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// JSON or SSE carrying the mock's reply text, `WORKS`.
    Text,
    /// An AWS event stream of `chunk`s whose events carry `WORKS` and end with `message_stop`.
    EventStream,
    /// One vector of this many dimensions, as floats or base64.
    Embedding { dimensions: usize, base64: bool },
}

/// Why `body` (answered with `status`) is not what `answer` expects.
pub(crate) fn verify(answer: Answer, status: u16, body: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    if status != 200 {
        return Err(format!("status {status}: {}", text.chars().take(300).collect::<String>()));
    }
    match answer {
        Answer::Text if text.contains("WORKS") => Ok(()),
        Answer::Text => {
            Err(format!("no `WORKS` in {}", text.chars().take(300).collect::<String>()))
        }
        Answer::EventStream => {
            let events = event_stream_chunks(body)?;
            let joined = String::from_utf8_lossy(&events.concat()).into_owned();
            let last = events.last().map(|e| String::from_utf8_lossy(e).into_owned());
            if !joined.contains("WORKS") {
                return Err(format!("no `WORKS` in the {} chunk(s)", events.len()));
            }
            match last {
                Some(last) if last.contains(r#""message_stop""#) => Ok(()),
                other => Err(format!("the last chunk is not message_stop: {other:?}")),
            }
        }
        Answer::Embedding { dimensions, base64 } => {
            let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
            let embedding = &v["data"][0]["embedding"];
            let got = if base64 {
                use base64::Engine as _;
                let text = embedding.as_str().ok_or("the embedding is not a base64 string")?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("the embedding is not base64: {e}"))?;
                raw.len() / 4
            } else {
                embedding.as_array().ok_or("the embedding is not a list of floats")?.len()
            };
            if got == dimensions {
                Ok(())
            } else {
                Err(format!("{got} dimensions, not {dimensions}"))
            }
        }
    }
}

/// The decoded events of an AWS event stream's `chunk` frames (`{"bytes": "<base64>"}`).
/// Frames are read by their length prefixes; checksums are the HTTP client's business.
pub(crate) fn event_stream_chunks(mut body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine as _;
    let word = |b: &[u8], at: usize| -> Option<usize> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let mut events = Vec::new();
    while !body.is_empty() {
        let (Some(total), Some(headers)) = (word(body, 0), word(body, 4)) else {
            return Err(format!("a frame cut short ({} bytes left)", body.len()));
        };
        // Prelude (total, headers length, CRC), headers, payload, CRC.
        let payload = body
            .get(12 + headers..total.saturating_sub(4))
            .filter(|_| total <= body.len())
            .ok_or_else(|| format!("a frame of {total} bytes with {} left", body.len()))?;
        let chunk: Value = serde_json::from_slice(payload)
            .map_err(|e| format!("a frame's payload is not JSON: {e}"))?;
        let encoded = chunk["bytes"]
            .as_str()
            .ok_or_else(|| format!("a frame that is not a chunk: {chunk}"))?;
        events.push(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("a chunk's bytes are not base64: {e}"))?,
        );
        body = &body[total..];
    }
    Ok(events)
}

/// Every lane of one mode: the gateway at `gateway`, the mock at `mock`. Embeddings do not
/// stream, so the stream mode has none of theirs.
pub(crate) fn lanes(
    mock: SocketAddr,
    gateway: SocketAddr,
    streaming: bool,
) -> Result<Vec<Lane>, String> {
    let stream = if streaming { r#","stream":true"# } else { "" };
    let question = r#""messages":[{"role":"user","content":"Say: WORKS"}]"#;
    let (json_tail, sse_tail): (&'static [u8], &'static [u8]) = (b"}}", br#""message_stop"}"#);
    let tail = if streaming { sse_tail } else { json_tail };
    let anthropic_version = || header("anthropic-version", "2023-06-01");
    let gateway_key = || header("x-api-key", MASTER_KEY);
    let target = |addr, path: String, headers, body: String, expect_tail| Target {
        addr,
        path,
        headers,
        body: Bytes::from(body),
        streaming,
        expect_tail,
        tls: None,
    };
    let anthropic = "Anthropic";
    let mut lanes = vec![
        Lane {
            deployment: anthropic,
            route: "mock /v1/messages",
            role: Role::Floor,
            answer: Answer::Text,
            target: target(
                mock,
                "/v1/messages".into(),
                vec![header("x-api-key", UPSTREAM_KEY)?, anthropic_version()?],
                format!(r#"{{"model":"{MODEL}","max_tokens":10,{question}{stream}}}"#),
                tail,
            ),
        },
        Lane {
            deployment: anthropic,
            route: "/v1/messages",
            role: Role::Baseline,
            answer: Answer::Text,
            target: target(
                gateway,
                "/v1/messages".into(),
                vec![gateway_key()?, anthropic_version()?],
                format!(r#"{{"model":"cheap","max_tokens":10,{question}{stream}}}"#),
                tail,
            ),
        },
        Lane {
            deployment: anthropic,
            route: "/anthropic/v1/messages",
            role: Role::Contender,
            answer: Answer::Text,
            // The relay forwards the body as it is: it names the upstream's model.
            target: target(
                gateway,
                "/anthropic/v1/messages".into(),
                vec![gateway_key()?, anthropic_version()?],
                format!(r#"{{"model":"{MODEL}","max_tokens":10,{question}{stream}}}"#),
                tail,
            ),
        },
        Lane {
            deployment: anthropic,
            route: "/v1/chat/completions",
            role: Role::Contender,
            answer: Answer::Text,
            target: target(
                gateway,
                "/v1/chat/completions".into(),
                vec![header("authorization", &format!("Bearer {MASTER_KEY}"))?],
                format!(r#"{{"model":"cheap","max_tokens":10,{question}{stream}}}"#),
                if streaming { b"data: [DONE]" } else { json_tail },
            ),
        },
    ];
    let bedrock = "Bedrock";
    let operation = if streaming { "invoke-with-response-stream" } else { "invoke" };
    // An event stream ends with a binary checksum: only the JSON answer's end is checked.
    let invoke_tail = if streaming { b"" as &[u8] } else { json_tail };
    let invoke_answer = if streaming { Answer::EventStream } else { Answer::Text };
    let invoke_body =
        format!(r#"{{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,{question}}}"#);
    lanes.extend([
        Lane {
            deployment: bedrock,
            route: "mock InvokeModel",
            role: Role::Floor,
            answer: invoke_answer,
            target: target(
                mock,
                format!("/model/{BEDROCK_PATH_ID}/{operation}"),
                vec![header("authorization", &format!("Bearer {BEDROCK_KEY}"))?],
                invoke_body.clone(),
                invoke_tail,
            ),
        },
        Lane {
            deployment: bedrock,
            route: "/v1/messages",
            role: Role::Baseline,
            answer: Answer::Text,
            target: target(
                gateway,
                "/v1/messages".into(),
                vec![gateway_key()?, anthropic_version()?],
                format!(r#"{{"model":"bedrock-haiku","max_tokens":10,{question}{stream}}}"#),
                tail,
            ),
        },
        Lane {
            deployment: bedrock,
            route: if streaming {
                "/bedrock/…/invoke-with-response-stream"
            } else {
                "/bedrock/…/invoke"
            },
            role: Role::Contender,
            answer: invoke_answer,
            target: target(
                gateway,
                format!("/bedrock/model/{BEDROCK_PATH_ID}/{operation}"),
                vec![header("authorization", &format!("Bearer {MASTER_KEY}"))?],
                invoke_body,
                invoke_tail,
            ),
        },
    ]);
    if streaming {
        return Ok(lanes);
    }
    for (deployment, format) in [("embeddings, float", "float"), ("embeddings, base64", "base64")] {
        let embedding = Answer::Embedding { dimensions: 1536, base64: format == "base64" };
        let body = |model: &str| {
            format!(
                r#"{{"model":"{model}","input":"The quick brown fox jumps over the lazy dog","encoding_format":"{format}"}}"#
            )
        };
        lanes.extend([
            Lane {
                deployment,
                route: "mock /v1/embeddings",
                role: Role::Floor,
                answer: embedding,
                target: target(
                    mock,
                    "/v1/embeddings".into(),
                    vec![header("authorization", &format!("Bearer {UPSTREAM_KEY}"))?],
                    body(EMBEDDING_MODEL),
                    json_tail,
                ),
            },
            Lane {
                deployment,
                route: "/v1/embeddings",
                role: Role::Contender,
                answer: embedding,
                target: target(
                    gateway,
                    "/v1/embeddings".into(),
                    vec![header("authorization", &format!("Bearer {MASTER_KEY}"))?],
                    body("embed"),
                    json_tail,
                ),
            },
        ]);
    }
    Ok(lanes)
}

/// What one lane measured at one concurrency and mode.
pub(crate) struct Measured {
    pub deployment: &'static str,
    pub route: &'static str,
    pub role: Role,
    pub streaming: bool,
    pub concurrency: usize,
    pub side: Side,
    /// The serving process's CPU per request: the mock's for a floor, else the gateway's.
    pub cpu_us: f64,
    /// The gateway's peak RSS in the lane's rounds (none for a floor).
    pub peak_rss: Option<u64>,
}

pub async fn surfaces(s: &Settings<'_>) -> Result<Compared, String> {
    let machine = Machine::read();
    let mock = procs::start_mock_with(s.bins, &["--bedrock-api-key", BEDROCK_KEY])?;
    let dir = s.work.join("surfaces");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config_path = dir.join("gateway.yaml");
    std::fs::write(&config_path, config(mock.addr)).map_err(|e| e.to_string())?;
    let gateway =
        procs::start_gateway_in(s.bins, &config_path, &dir.join("gateway.log"), Some(&dir))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let results = match check(s, &mock, &gateway).await {
        Ok(()) => rotate(s, &mock, &gateway).await,
        Err(e) => Err(e),
    };
    drop(gateway);
    drop(mock);
    let results = results?;
    let title = "Request surfaces, each against its deployment's baseline.";
    let (markdown, json) = render(s, &machine, title, &results);
    Ok(Compared {
        markdown,
        failure: failed_requests(&results),
        json: json!({"compare": "surfaces", "rows": json}),
    })
}

/// One request of every lane, its whole answer checked: a lane that answers something else
/// (an error, a stream cut short) would measure that instead.
async fn check(s: &Settings<'_>, mock: &Proc, gateway: &Proc) -> Result<(), String> {
    for &streaming in s.modes {
        for lane in lanes(mock.addr, gateway.addr, streaming)? {
            let (status, body) = load::fetch(&lane.target).await?;
            verify(lane.answer, status, &body).map_err(|why| {
                let mode = if streaming { "stream" } else { "json" };
                format!("{} {} ({mode}) answers wrong: {why}", lane.deployment, lane.route)
            })?;
        }
    }
    Ok(())
}

/// Rounds rotating over every lane, at each mode and concurrency.
async fn rotate(s: &Settings<'_>, mock: &Proc, gateway: &Proc) -> Result<Vec<Measured>, String> {
    let round = Round {
        concurrency: 0,
        warmup: Duration::from_secs_f64((s.seconds / 5.0).clamp(0.2, 1.0)),
        duration: Duration::from_secs_f64(s.seconds),
    };
    let measured_share =
        round.duration.as_secs_f64() / (round.duration + round.warmup).as_secs_f64();
    let mut results = Vec::new();
    for &streaming in s.modes {
        let lanes = lanes(mock.addr, gateway.addr, streaming)?;
        let targets: Vec<Arc<Target>> = lanes.iter().map(|l| Arc::new(l.target.clone())).collect();
        for &concurrency in s.concurrency {
            let round = Round { concurrency, ..round };
            let mut outcomes: Vec<Option<Outcome>> = lanes.iter().map(|_| None).collect();
            let mut cpu = vec![0.0; lanes.len()];
            let mut peak = vec![0u64; lanes.len()];
            for rep in 0..s.reps {
                for k in 0..lanes.len() {
                    let i = (k + rep) % lanes.len();
                    let lane = &lanes[i];
                    let server = if lane.role == Role::Floor { mock } else { gateway };
                    eprintln!(
                        "bench: surfaces {} {}, {concurrency} clients, round {}",
                        lane.deployment,
                        lane.route,
                        rep + 1
                    );
                    gateway.reset_peak().ok();
                    let before = server.cpu_seconds()?;
                    let o = load::run(Arc::clone(&targets[i]), round).await;
                    cpu[i] += (server.cpu_seconds()? - before) * measured_share;
                    peak[i] = peak[i].max(gateway.memory()?.peak);
                    match &mut outcomes[i] {
                        None => outcomes[i] = Some(o),
                        Some(total) => total.merge(&o),
                    }
                }
            }
            for (i, lane) in lanes.iter().enumerate() {
                let o = outcomes[i].take().unwrap_or_else(Outcome::empty);
                results.push(Measured {
                    deployment: lane.deployment,
                    route: lane.route,
                    role: lane.role,
                    streaming,
                    concurrency,
                    side: Side::new(&o, streaming),
                    cpu_us: per_request_us(cpu[i], o.requests),
                    peak_rss: (lane.role != Role::Floor).then_some(peak[i]),
                });
            }
        }
    }
    Ok(results)
}

/// Why the run does not count, when a request failed.
fn failed_requests(results: &[Measured]) -> Option<String> {
    results.iter().find(|r| r.side.errors > 0).map(|r| {
        format!(
            "{} request(s) failed ({} {}, {} clients, {}): {}",
            r.side.errors,
            r.deployment,
            r.route,
            r.concurrency,
            if r.streaming { "stream" } else { "json" },
            r.side.first_error.as_deref().unwrap_or("no detail")
        )
    })
}

/// The lane `r` is divided by: its deployment's baseline, or its floor where it has none.
fn reference<'a>(results: &'a [Measured], r: &Measured, role: Role) -> Option<&'a Measured> {
    results.iter().find(|o| {
        o.deployment == r.deployment
            && o.streaming == r.streaming
            && o.concurrency == r.concurrency
            && o.role == role
    })
}

/// `r`'s requests a second over its baseline's (its floor's, for a deployment without one),
/// and over its floor's. A floor is its own baseline where its deployment has no other; else it has none.
pub(crate) fn ratios(results: &[Measured], r: &Measured) -> (Option<f64>, Option<f64>) {
    let floor = reference(results, r, Role::Floor);
    let baseline = reference(results, r, Role::Baseline);
    let baseline = match baseline {
        Some(_) if r.role == Role::Floor => None,
        Some(baseline) => Some(baseline),
        None => floor,
    };
    let over =
        |o: Option<&Measured>| o.filter(|o| o.side.rps > 0.0).map(|o| r.side.rps / o.side.rps);
    (over(baseline), over(floor))
}

pub(crate) fn render(
    s: &Settings<'_>,
    machine: &Machine,
    title: &str,
    results: &[Measured],
) -> (String, Vec<Value>) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{title} Machine: {} cores ({}), {} RAM; load average {} before, {} after. {} round(s) of \
         {:.1} s per lane, every lane rotating.\n",
        machine.cores,
        machine.cpu,
        machine.memory,
        machine.load_before,
        report::loadavg(),
        s.reps,
        s.seconds
    );
    let _ = writeln!(
        out,
        "| mode | clients | deployment | route | req/s | vs baseline | / floor | p50 / p99 ms \
         | p50 over floor ms | CPU µs/req | errors | peak RSS |\n\
         |---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    let mut json_rows = Vec::new();
    for r in results {
        let (vs_baseline, to_floor) = ratios(results, r);
        let over_floor = reference(results, r, Role::Floor)
            .filter(|_| r.role != Role::Floor)
            .map(|f| r.side.p50 - f.side.p50);
        let ratio = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"));
        let route = match r.role {
            Role::Baseline => format!("{} (baseline)", r.route),
            _ => r.route.to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.3} / {:.3} | {} | {:.1} | {} | {} |",
            if r.streaming { "stream" } else { "json" },
            r.concurrency,
            r.deployment,
            route,
            r.side.rps,
            ratio(vs_baseline),
            ratio(to_floor),
            r.side.p50,
            r.side.p99,
            over_floor.map_or_else(|| "—".to_owned(), |v| format!("{v:+.3}")),
            r.cpu_us,
            r.side.errors,
            r.peak_rss
                .map_or_else(|| "—".to_owned(), |b| format!("{:.1} MB", b as f64 / 1_048_576.0)),
        );
        json_rows.push(json!({
            "mode": if r.streaming { "stream" } else { "json" },
            "concurrency": r.concurrency,
            "deployment": r.deployment,
            "route": r.route,
            "role": format!("{:?}", r.role).to_lowercase(),
            "rps": r.side.rps,
            "vs_baseline": vs_baseline,
            "to_floor": to_floor,
            "p50_ms": r.side.p50,
            "p99_ms": r.side.p99,
            "p50_over_floor_ms": over_floor,
            "cpu_us_per_request": r.cpu_us,
            "errors": r.side.errors,
            "peak_rss_bytes": r.peak_rss,
        }));
    }
    out.push_str(
        "\nCPU µs/req: the mock's for a floor, the gateway's for a route through it. Floors and \
         routes share the cores with the load generator.\n",
    );
    (out, json_rows)
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
    fn the_config_puts_every_deployment_on_the_mock_and_turns_the_ledger_off() {
        let yaml = config(addr(4010));
        let env = MapEnv::new([("HOME", "/nonexistent")]);
        let cfg = config::load_from_str(&yaml, Path::new("surfaces.yaml"), &env)
            .unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        let group = |name: &str| {
            let group = cfg.groups.iter().find(|g| g.name == name);
            group.unwrap_or_else(|| panic!("no group {name}")).deployments[0].clone()
        };
        let bedrock = group("bedrock-haiku");
        assert!(matches!(bedrock.provider, ProviderKind::Bedrock(_)));
        assert_eq!(bedrock.model, BEDROCK_MODEL);
        // A Bedrock API key: the floor sends the same `Authorization` the gateway does.
        assert!(bedrock.api_key.is_some());
        assert_eq!(group("cheap").provider, ProviderKind::Anthropic);
        assert!(group("embed").is_embedding());
        assert!(cfg.general.disable_spend_logs);
    }

    #[test]
    fn every_deployment_has_one_floor_at_the_mock_and_its_routes_at_the_gateway() {
        let (mock, gateway) = (addr(4010), addr(4020));
        for streaming in [false, true] {
            let lanes = lanes(mock, gateway, streaming).unwrap_or_else(|e| panic!("{e}"));
            let mut deployments: Vec<&str> = lanes.iter().map(|l| l.deployment).collect();
            deployments.dedup();
            for d in &deployments {
                let of =
                    |role| lanes.iter().filter(|l| l.deployment == *d && l.role == role).count();
                assert_eq!(of(Role::Floor), 1, "{d}");
                assert!(of(Role::Baseline) <= 1, "{d}");
                assert!(of(Role::Contender) >= 1, "{d}");
            }
            for l in &lanes {
                let at = if l.role == Role::Floor { mock } else { gateway };
                assert_eq!(l.target.addr, at, "{} {}", l.deployment, l.route);
                assert_eq!(l.target.streaming, streaming);
                // Every body is JSON the server can read.
                let body: Value = serde_json::from_slice(&l.target.body)
                    .unwrap_or_else(|e| panic!("{} {}: {e}", l.deployment, l.route));
                assert!(body.is_object());
            }
            // Embeddings do not stream.
            assert_eq!(deployments.iter().any(|d| d.starts_with("embeddings")), !streaming);
        }
    }

    fn measured(deployment: &'static str, role: Role, rps: f64) -> Measured {
        Measured {
            deployment,
            route: "r",
            role,
            streaming: false,
            concurrency: 16,
            side: Side { rps, ..Side::default() },
            cpu_us: 0.0,
            peak_rss: None,
        }
    }

    #[test]
    fn routes_are_divided_by_their_deployments_baseline_else_by_the_floor() {
        let results = [
            measured("Anthropic", Role::Floor, 40_000.0),
            measured("Anthropic", Role::Baseline, 10_000.0),
            measured("Anthropic", Role::Contender, 8_000.0),
            measured("embeddings", Role::Floor, 20_000.0),
            measured("embeddings", Role::Contender, 5_000.0),
        ];
        assert_eq!(ratios(&results, &results[2]), (Some(0.8), Some(0.2)));
        assert_eq!(ratios(&results, &results[1]), (Some(1.0), Some(0.25)));
        assert_eq!(ratios(&results, &results[4]), (Some(0.25), Some(0.25)));
        // A floor is not divided by a gateway route, only by itself where it is the baseline.
        assert_eq!(ratios(&results, &results[0]), (None, Some(1.0)));
        assert_eq!(ratios(&results, &results[3]), (Some(1.0), Some(1.0)));
        // A floor that served nothing divides nothing.
        let empty = [measured("x", Role::Floor, 0.0), measured("x", Role::Contender, 1.0)];
        assert_eq!(ratios(&empty, &empty[1]), (None, None));
    }

    /// An event-stream frame around `event` (checksums left zero: they are not read).
    fn frame(event: &str) -> Vec<u8> {
        use base64::Engine as _;
        let headers = b"\x0b:event-type\x07\x00\x05chunk";
        let encoded = base64::engine::general_purpose::STANDARD.encode(event);
        let payload = format!(r#"{{"bytes":"{encoded}"}}"#);
        let total = 12 + headers.len() + payload.len() + 4;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(headers);
        out.extend_from_slice(payload.as_bytes());
        out.extend_from_slice(&[0; 4]);
        out
    }

    #[test]
    fn an_event_stream_must_carry_the_answer_and_end_with_message_stop() {
        let delta =
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"WORKS"}}"#;
        let stop = r#"{"type":"message_stop"}"#;
        let whole = [frame(delta), frame(stop)].concat();
        assert_eq!(event_stream_chunks(&whole).unwrap().len(), 2);
        assert_eq!(verify(Answer::EventStream, 200, &whole), Ok(()));
        let cut = &whole[..whole.len() - 10];
        assert!(verify(Answer::EventStream, 200, cut).unwrap_err().contains("frame"));
        let unfinished = frame(delta);
        assert!(
            verify(Answer::EventStream, 200, &unfinished).unwrap_err().contains("message_stop")
        );
        assert!(verify(Answer::EventStream, 503, &whole).unwrap_err().starts_with("status 503"));
    }

    #[test]
    fn an_embedding_must_have_the_dimensions_asked_for_in_either_encoding() {
        let floats = br#"{"data":[{"embedding":[0.5,-0.25,1.0]}]}"#;
        assert_eq!(verify(Answer::Embedding { dimensions: 3, base64: false }, 200, floats), Ok(()));
        let short = verify(Answer::Embedding { dimensions: 4, base64: false }, 200, floats);
        assert_eq!(short, Err("3 dimensions, not 4".to_owned()));
        // Three little-endian f32s.
        let encoded = br#"{"data":[{"embedding":"AAAAPwAAgL4AAIA/"}]}"#;
        assert_eq!(verify(Answer::Embedding { dimensions: 3, base64: true }, 200, encoded), Ok(()));
        assert!(verify(Answer::Embedding { dimensions: 3, base64: true }, 200, floats).is_err());
        assert!(verify(Answer::Text, 200, b"{}").unwrap_err().contains("WORKS"));
    }
}
