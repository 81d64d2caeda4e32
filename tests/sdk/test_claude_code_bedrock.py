"""Claude Code in its Bedrock mode through the gateway's /bedrock routes, for every upstream
provider and every pinned Claude Code version: InvokeModelWithResponseStream answered through the
router (a failing first deployment fails over), the ledger row names the alias and deployment.

What Claude Code (2.1.197 … 2.1.332) sends with CLAUDE_CODE_USE_BEDROCK=1 and
ANTHROPIC_BEDROCK_BASE_URL=<gateway>/bedrock: `GET /bedrock/inference-profiles?type=SYSTEM_DEFINED`
(Bedrock's control plane; it carries on when that fails), then `POST /bedrock/model/<id>/
invoke-with-response-stream` with the model id unencoded (ANTHROPIC_MODEL as written, else its
default `us.anthropic.claude-…-v1:0` ids; newer versions first probe several ids with `…/invoke`
and `max_tokens: 1`), `anthropic-version` and `anthropic-beta` headers, and the Messages body with
`anthropic_version: bedrock-2023-05-31`. With CLAUDE_CODE_SKIP_BEDROCK_AUTH=1 and nothing else it
sends no credential; AWS_BEARER_TOKEN_BEDROCK=<key> makes it send `Authorization: Bearer <key>`,
which is how the gateway key travels (recommended setup, docs/passthrough.md "Claude Code on Bedrock")."""

from __future__ import annotations

import json
import subprocess

import urllib.request

import pytest

from harness import (MASTER_KEY, Process, binary, child_env, claude_code_binary, claude_code_versions,
                     wait_until)

MODEL = "claude-sonnet-4-6"    # what ANTHROPIC_MODEL says; routed to the failover group
GROUP = "bedrock-failover"


def failover_config(path, provider, mock_url: str) -> None:
    """One group whose first deployment's upstream key is refused and whose second serves."""
    model_id = provider.models["balanced"]
    lines = ["model_list:"]
    for order, bad in ((1, True), (2, False)):
        lines += [f"  - model_name: {GROUP}", "    litellm_params:"]
        params = provider.litellm_params(model_id, mock_url, bad_key=bad) | {"order": order}
        lines += [f"      {k}: {json.dumps(v)}" for k, v in params.items()]
        lines += ["    model_info:", f"      id: {'refused' if bad else 'serving'}"]
    lines += [
        "general_settings:",
        f"  master_key: {json.dumps(MASTER_KEY)}",
        "router_settings:",
        "  num_retries: 0",
        "  model_group_alias:",
        f"    {json.dumps(MODEL)}: {json.dumps(GROUP)}",
        "",
    ]
    path.write_text("\n".join(lines))


@pytest.fixture
def failover_gateway(gateway, tmp_path):
    home = tmp_path / "gw"
    home.mkdir()
    config = home / "config.yaml"
    failover_config(config, gateway.provider, gateway.mock.url)
    argv = [str(binary("SWITCHYARD_BIN", "switchyard")), "--config", str(config),
            "--host", "127.0.0.1", "--port", "0"]
    process = Process("switchyard-bedrock-mode", argv, "Switchyard", home, child_env(home))
    yield process
    process.stop()


@pytest.mark.parametrize("version", claude_code_versions())
def test_claude_code_in_bedrock_mode_is_routed_with_failover(gateway, failover_gateway, tmp_path,
                                                             version):
    claude = claude_code_binary(version)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = child_env(
        home,
        CLAUDE_CODE_USE_BEDROCK="1",
        ANTHROPIC_BEDROCK_BASE_URL=failover_gateway.url + "/bedrock",
        CLAUDE_CODE_SKIP_BEDROCK_AUTH="1",
        AWS_BEARER_TOKEN_BEDROCK=MASTER_KEY,
        AWS_REGION="us-east-1",
        ANTHROPIC_MODEL=MODEL,
        ANTHROPIC_SMALL_FAST_MODEL=MODEL,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=MODEL,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
    )
    result = subprocess.run([str(claude), "-p", "Say: WORKS"], cwd=work, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}\n" \
             f"gateway log:\n{failover_gateway.log_tail()}"
    assert result.returncode == 0, output
    assert "WORKS" in result.stdout, output

    calls = gateway.calls()
    assert calls, "Claude Code's request reached the upstream"
    assert {c.model for c in calls} == {gateway.model_id("balanced")}

    def rows():
        request = urllib.request.Request(failover_gateway.url + "/spend/logs",
                                         headers={"Authorization": f"Bearer {MASTER_KEY}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            logs = json.load(answer)
        return [r for r in logs if r.get("call_type") == "pass_through_endpoint"]

    assert wait_until(lambda: any(r.get("status") == "success" for r in rows()), timeout=10), rows()
    served = [r for r in rows() if r.get("status") == "success"]
    assert all(r["model_group"] == MODEL or r["model_group"] == GROUP for r in served), served
    assert all(r["model_id"] == "serving" for r in served), served
    assert all(r["metadata"]["attempts"][0]["model_id"] == "refused" for r in served), served
    assert MASTER_KEY not in failover_gateway.log_tail(10_000), "the key never reaches the log"
