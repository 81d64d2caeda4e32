"""Claude Code itself (the pinned npm package scripts/test installs into .cache/claude-code)
through the gateway, for every upstream provider.

What Claude Code 2.1.331 sends for `claude -p "Say: WORKS"` with
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1: exactly one `POST /v1/messages?beta=true`,
streaming, `x-api-key: <ANTHROPIC_API_KEY>`, `anthropic-version: 2023-06-01`, an
`anthropic-beta` list (claude-code-20250219, interleaved-thinking-…, context-management-…,
…), `max_tokens` 128000, `thinking` {type: adaptive}, `output_config` {effort}, `context_management`,
`metadata.user_id`, a system prompt and ~12 tools with `cache_control` blocks. The model is
$ANTHROPIC_MODEL (without it, its own default, e.g. `claude-opus-5-5`, which a config would
have to map)."""

from __future__ import annotations

import subprocess

from harness import MASTER_KEY, child_env, claude_code_binary

MODEL = "claude-sonnet-4-6"        # the main model; the config maps this raw name
SMALL_MODEL = "claude-haiku-4-5"   # background/small-model requests, should any be made


def claude_env(gateway, home) -> dict[str, str]:
    return child_env(
        home,
        ANTHROPIC_BASE_URL=gateway.url,
        ANTHROPIC_API_KEY=MASTER_KEY,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        ANTHROPIC_MODEL=MODEL,
        ANTHROPIC_DEFAULT_SONNET_MODEL=MODEL,
        ANTHROPIC_DEFAULT_OPUS_MODEL=MODEL,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=SMALL_MODEL,
        ANTHROPIC_SMALL_FAST_MODEL=SMALL_MODEL,
    )


def test_claude_code_says_works(gateway, tmp_path):
    claude = claude_code_binary()
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    result = subprocess.run(
        [str(claude), "-p", "Say: WORKS"],
        cwd=work,
        env=claude_env(gateway, home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 0, output
    assert "WORKS" in result.stdout, output

    calls = gateway.calls()
    assert calls, "Claude Code's request reached the upstream"
    allowed = {gateway.model_id(MODEL), gateway.model_id(SMALL_MODEL)}
    assert {c.model for c in calls} <= allowed
    main = [c for c in calls if c.body.get("tools")]
    assert main, "the main request (with Claude Code's tools) reached the upstream"
    last_user = main[-1].messages[-1]
    content = last_user["content"]
    texts = [content] if isinstance(content, str) else [b.get("text", "") for b in content]
    assert any("Say: WORKS" in t for t in texts)
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
