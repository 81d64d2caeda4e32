"""Codex CLI through the gateway's Responses API, started by `switchyard codex`, for every
upstream provider and every pinned version (tests/sdk/codex-versions.txt, installed by
scripts/test into .cache/codex).

What Codex 0.171.0 sends (captured against a recorder): one streaming `POST /v1/responses`
per turn with `authorization: Bearer <env_key's value>`, `session-id`/`thread-id` headers,
the system prompt as the first `developer` message in `input`, an `<environment_context>` user message, function tools (`exec_command`, …), a
`namespace` tool (multi_agent_v1), `store: false` (the whole history is sent every turn),
`reasoning: {summary: auto}`, `include: [reasoning.encrypted_content]`, `prompt_cache_key`
and `client_metadata`. A tool round trip is a second POST with the `function_call` echoed back
and a `function_call_output`.

Codex runs with HOME and CODEX_HOME in a temporary directory and only loopback to talk to."""

from __future__ import annotations

import subprocess

import pytest

from harness import MASTER_KEY, binary, child_env, codex_bin_dir, codex_versions


def run_codex(gateway, tmp_path, version: str, prompt: str) -> subprocess.CompletedProcess:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    env = child_env(home, CODEX_HOME=str(home / ".codex"), SWITCHYARD_MASTER_KEY=MASTER_KEY)
    env["PATH"] = f"{codex_bin_dir(version)}:{env['PATH']}"
    argv = [str(binary("SWITCHYARD_BIN", "switchyard")), "codex", "--url", gateway.url,
            "--session", f"codex-test-{version}", "--",
            "exec", "--skip-git-repo-check", "-C", str(work), prompt]
    return subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def texts(content) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    return [b.get("text", "") for b in content or [] if b.get("type", "text") == "text"]


@pytest.mark.parametrize("version", codex_versions())
def test_codex_says_works(gateway, tmp_path, version):
    gateway.mock.push({"text": "WORKS"})
    result = run_codex(gateway, tmp_path, version, "Say: WORKS")
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 0, output
    assert "WORKS" in result.stdout, output
    assert MASTER_KEY not in result.stdout + result.stderr, "the key is never printed"

    calls = [c for c in gateway.calls() if c.body.get("tools")]
    assert len(calls) == 1, [c.messages for c in calls]
    # `switchyard codex` asks for the balanced tier.
    assert calls[0].model == gateway.model_id("balanced")
    assert any("Say: WORKS" in t for t in texts(calls[0].messages[-1]["content"]))
    # Codex's system prompt (its first developer message) is the upstream's system prompt.
    assert any("Codex" in t for t in texts(calls[0].body.get("system"))), calls[0].body.get("system")
    assert "exec_command" in {t.get("name") for t in calls[0].body["tools"]}


@pytest.mark.parametrize("version", codex_versions())
def test_codex_runs_a_tool_and_sends_its_result_back(gateway, tmp_path, version):
    """A whole agent turn: the model asks for `exec_command`, Codex runs it and sends the
    output back in a second request, which the upstream answers."""
    gateway.mock.push(
        {"tool_use": {"name": "exec_command", "input": {"cmd": "echo TOOL-RAN"}}},
        {"text": "DONE-AFTER-TOOL"},
    )
    result = run_codex(gateway, tmp_path, version, "Run: echo TOOL-RAN")
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 0, output
    assert "DONE-AFTER-TOOL" in result.stdout, output

    calls = [c for c in gateway.calls() if c.body.get("tools")]
    assert len(calls) == 2, [c.messages for c in calls]
    history = calls[1].messages
    [tool_use] = [b for m in history if m["role"] == "assistant" and isinstance(m["content"], list)
                  for b in m["content"] if b.get("type") == "tool_use"]
    assert tool_use["name"] == "exec_command" and tool_use["input"] == {"cmd": "echo TOOL-RAN"}
    [tool_result] = calls[1].blocks("tool_result")
    assert tool_result["tool_use_id"] == tool_use["id"]
    content = tool_result.get("content")
    assert any("TOOL-RAN" in t for t in (texts(content) if content else [])), tool_result
