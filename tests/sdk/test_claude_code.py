"""Claude Code itself through the gateway, for every upstream provider and every pinned version
(tests/sdk/claude-code-versions.txt, installed by scripts/test into .cache/claude-code).

What Claude Code sends for `claude -p "Say: WORKS"` with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
(2.1.197 … 2.1.332): a `HEAD /`, then one `POST /v1/messages?beta=true`, streaming,
`x-api-key: <ANTHROPIC_API_KEY>`, `anthropic-version: 2023-06-01`, an `anthropic-beta` list
(claude-code-20250219, interleaved-thinking-…, context-management-…, …), `thinking` {type:
adaptive, display?}, `output_config` {effort}, `context_management`, `metadata.user_id`, a system
prompt and 12-24 tools with `cache_control` blocks. Called with a model it does not know (a tier
alias: `--model cheap`) it also puts a `system`-role message inside `messages` (the available
agent types, or its environment), which the Messages API's own schema has no role for.

Two ways of naming the model, as users do:
- `raw`: ANTHROPIC_MODEL=claude-sonnet-4-6, a raw name the config maps like an alias;
- `alias`: `--model cheap`, a tier alias."""

from __future__ import annotations

import subprocess

import pytest

from harness import MASTER_KEY, RecordingRelay, child_env, claude_code_binary, claude_code_versions

MODEL = "claude-sonnet-4-6"        # the main model; the config maps this raw name
SMALL_MODEL = "claude-haiku-4-5"   # background/small-model requests, should any be made
ALIAS = "cheap"


def claude_env(base_url: str, home) -> dict[str, str]:
    return child_env(
        home,
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=MASTER_KEY,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        ANTHROPIC_MODEL=MODEL,
        ANTHROPIC_DEFAULT_SONNET_MODEL=MODEL,
        ANTHROPIC_DEFAULT_OPUS_MODEL=MODEL,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=SMALL_MODEL,
        ANTHROPIC_SMALL_FAST_MODEL=SMALL_MODEL,
    )


def texts(content) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    return [b.get("text", "") for b in content or [] if b.get("type", "text") == "text"]


@pytest.mark.parametrize("naming", ["raw", "alias"])
@pytest.mark.parametrize("version", claude_code_versions())
def test_claude_code_says_works(gateway, tmp_path, version, naming):
    claude = claude_code_binary(version)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    relay = RecordingRelay(gateway.url)
    argv = [str(claude), "-p", "Say: WORKS"] + (["--model", ALIAS] if naming == "alias" else [])
    try:
        result = subprocess.run(
            argv,
            cwd=work,
            env=claude_env(relay.url, home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        relay.close()
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 0, output
    assert "WORKS" in result.stdout, output

    calls = gateway.calls()
    assert calls, "Claude Code's request reached the upstream"
    names = [ALIAS] if naming == "alias" else [MODEL, SMALL_MODEL]
    assert {c.model for c in calls} <= {gateway.model_id(n) for n in names}
    main = [c for c in calls if c.body.get("tools")]
    assert main, "the main request (with Claude Code's tools) reached the upstream"
    last_user = main[-1].messages[-1]
    assert any("Say: WORKS" in t for t in texts(last_user["content"]))
    # Its betas (the features its body uses, e.g. context_management) reach the upstream: in
    # the anthropic-beta header, or on Bedrock in the body.
    # (An OpenAI-compatible upstream has neither betas nor cache_control: both stay behind.)
    if gateway.provider.forwards_betas:
        assert "claude-code-20250219" in main[-1].betas
        assert any(b.startswith("context-management-") for b in main[-1].betas)
    # Prompt caching is Claude Code's main cost saver: its cache_control marks arrive intact.
    system = main[-1].body.get("system")
    assert isinstance(system, list)
    if gateway.provider.keeps_cache_control:
        assert any("cache_control" in b for b in system)

    # Whatever the client put in `system` and in system-role messages is the upstream's system
    # prompt, in order: the top-level system first, then each system message as it came.
    sent = [r["body"] for r in relay.requests
            if r["method"] == "POST" and r["path"].startswith("/v1/messages")
            and isinstance(r["body"], dict) and r["body"].get("tools")]
    assert sent, "the relay saw Claude Code's main request"
    client = sent[-1]
    expected = texts(client.get("system"))
    expected += [t for m in client["messages"] if m.get("role") == "system"
                 for t in texts(m.get("content"))]
    assert [t for t in texts(system) if t] == expected
    assert all(m.get("role") in ("user", "assistant") for m in main[-1].messages)
    turns = [m for m in client["messages"] if m.get("role") != "system"]
    assert len(main[-1].messages) <= len(turns)
    if naming == "alias":
        assert any(m.get("role") == "system" for m in client["messages"]), (
            "Claude Code sends a system-role message for a model it does not know; if a new "
            "version stopped, this test no longer covers that shape"
        )


@pytest.mark.parametrize("version", claude_code_versions())
def test_claude_code_runs_a_tool_and_sends_its_result_back(gateway, tmp_path, version):
    """A whole agent turn: the model asks for Bash, Claude Code runs it and sends the result
    back in a second request, which the upstream answers."""
    gateway.mock.push(
        {"tool_use": {"name": "Bash",
                      "input": {"command": "echo TOOL-RAN", "description": "Print a word"}}},
        {"text": "DONE-AFTER-TOOL"},
    )
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    result = subprocess.run(
        [str(claude_code_binary(version)), "-p", "Run: echo TOOL-RAN", "--model", ALIAS,
         "--allowedTools", "Bash(echo:*)"],
        cwd=work,
        env=claude_env(gateway.url, home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 0, output
    assert "DONE-AFTER-TOOL" in result.stdout, output

    calls = [c for c in gateway.calls() if c.body.get("tools")]
    assert len(calls) == 2, [c.messages for c in calls]
    history = calls[1].messages
    [tool_use] = [b for m in history if m["role"] == "assistant" and isinstance(m["content"], list)
                  for b in m["content"] if b.get("type") == "tool_use"]
    assert tool_use["name"] == "Bash" and tool_use["input"]["command"] == "echo TOOL-RAN"
    [tool_result] = calls[1].blocks("tool_result")
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert any("TOOL-RAN" in t for t in texts(tool_result.get("content"))), tool_result
