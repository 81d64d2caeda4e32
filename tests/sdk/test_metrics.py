"""`/metrics` as Prometheus reads it: the exposition parsed by `prometheus_client`'s own
parser (LiteLLM's metric names, types and labels, and the values requests through the SDK
produced), then a real Prometheus server (Debian's `prometheus`, which scripts/test installs)
started on a free port with a generated scrape config, scraping the gateway, and a PromQL
query over its HTTP API returning the request count and spend the test produced."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PRICED_ALIAS, PRICES
from harness import MASTER_KEY

HI = [{"role": "user", "content": "Hi"}]
USAGE = {"input_tokens": 1000, "output_tokens": 100}
# 1000 × 1.1 + 100 × 4.3 millionths of a dollar.
ONE_COST = (
    USAGE["input_tokens"] * Decimal(PRICES["input_cost_per_token"])
    + USAGE["output_tokens"] * Decimal(PRICES["output_cost_per_token"])
)
REQUESTS = 3


def scrape(gateway) -> dict:
    """name → (type, [samples]) from the gateway's /metrics, as prometheus_client reads it."""
    with urllib.request.urlopen(gateway.url + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def total(families: dict, sample_name: str, **labels: str) -> float:
    family = sample_name.removesuffix("_total").removesuffix("_count")
    _, samples = families.get(family, (None, []))
    return sum(
        s.value
        for s in samples
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def send(oai, gateway, n: int) -> None:
    for _ in range(n):
        gateway.mock.push({"text": "counted", "usage": USAGE})
        oai.chat.completions.create(model=PRICED_ALIAS, messages=HI)


def test_prometheus_client_parses_litellms_families_and_the_values_requests_made(oai, gateway):
    before = scrape(gateway)
    send(oai, gateway, REQUESTS)
    after = scrape(gateway)

    for name, kind in [
        ("litellm_proxy_total_requests_metric", "counter"),
        ("litellm_proxy_failed_requests_metric", "counter"),
        ("litellm_spend_metric", "counter"),
        ("litellm_total_tokens_metric", "counter"),
        ("litellm_input_tokens_metric", "counter"),
        ("litellm_output_tokens_metric", "counter"),
        ("litellm_request_total_latency_metric", "histogram"),
        ("litellm_llm_api_latency_metric", "histogram"),
        ("litellm_llm_api_time_to_first_token_metric", "histogram"),
        ("litellm_overhead_latency_metric", "histogram"),
        ("litellm_deployment_state", "gauge"),
        ("litellm_deployment_success_responses", "counter"),
        ("litellm_deployment_failure_responses", "counter"),
        ("litellm_deployment_cooled_down", "counter"),
        ("litellm_remaining_api_key_budget_metric", "gauge"),
        ("litellm_remaining_team_budget_metric", "gauge"),
        ("switchyard_errors", "counter"),
        ("switchyard_in_flight_requests", "gauge"),
        ("switchyard_build_info", "gauge"),
    ]:
        assert name in after, name
        assert after[name][0] == kind, (name, after[name][0])

    ok = {"requested_model": PRICED_ALIAS, "status_code": "200"}
    requests = total(after, "litellm_proxy_total_requests_metric_total", **ok) - total(
        before, "litellm_proxy_total_requests_metric_total", **ok
    )
    assert requests == REQUESTS
    _, samples = after["litellm_proxy_total_requests_metric"]
    labels = next(s.labels for s in samples if s.labels.get("requested_model") == PRICED_ALIAS)
    assert set(labels) == {
        "end_user", "hashed_api_key", "api_key_alias", "requested_model", "team", "team_alias",
        "user", "status_code",
    }

    spend = total(after, "litellm_spend_metric_total") - total(before, "litellm_spend_metric_total")
    assert spend == pytest.approx(float(REQUESTS * ONE_COST), rel=1e-9)
    tokens = {"requested_model": PRICED_ALIAS}
    for name, want in [
        ("litellm_input_tokens_metric_total", USAGE["input_tokens"]),
        ("litellm_output_tokens_metric_total", USAGE["output_tokens"]),
    ]:
        assert total(after, name, **tokens) - total(before, name, **tokens) == REQUESTS * want
    latency = "litellm_request_total_latency_metric_count"
    assert total(after, latency, **tokens) - total(before, latency, **tokens) == REQUESTS


def test_a_config_reload_is_counted(gateway):
    before = total(scrape(gateway), "switchyard_config_reloads_total", result="ok")
    request = urllib.request.Request(
        gateway.url + "/config/reload", method="POST",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
    after = scrape(gateway)
    assert total(after, "switchyard_config_reloads_total", result="ok") == before + 1
    assert after["switchyard_config_reloads"][0] == "counter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def promql(base: str, query: str) -> float | None:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
    except OSError:
        return None
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_a_real_prometheus_scrapes_the_request_count_and_spend(oai, gateway, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not installed (scripts/test installs Debian's package)"
    send(oai, gateway, REQUESTS)
    # What the gateway says now: Prometheus must come to the same numbers.
    now = scrape(gateway)
    want_requests = total(
        now, "litellm_proxy_total_requests_metric_total", requested_model=PRICED_ALIAS
    )
    want_spend = total(now, "litellm_spend_metric_total")
    assert want_requests >= REQUESTS

    target = urllib.parse.urlsplit(gateway.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: switchyard\n"
        "    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    # Our own process, storage and port: the package's service is never touched.
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        requests = spend = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            requests = promql(
                base,
                f'sum(litellm_proxy_total_requests_metric_total{{job="switchyard",'
                f'requested_model="{PRICED_ALIAS}"}})',
            )
            spend = promql(base, 'sum(litellm_spend_metric_total{job="switchyard"})')
            if requests == want_requests and spend is not None:
                break
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-4000:]
            time.sleep(0.5)
        assert requests == want_requests, (tmp_path / "prometheus.log").read_text()[-4000:]
        assert spend == pytest.approx(want_spend, rel=1e-9)
        assert spend >= float(REQUESTS * ONE_COST)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
