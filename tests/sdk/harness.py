"""Processes and clients the SDK suite drives: the mock upstream (scripted over its `/_mock/*`
admin routes), the gateway binary, and the upstream providers the conformance suite is
instantiated for. Nothing here asserts gateway behaviour; the tests do."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))

# Keys the generated config uses. The mock accepts only UPSTREAM_KEY, so a deployment with
# BAD_UPSTREAM_KEY gets the API's own 401.
MASTER_KEY = "sk-switchyard-sdk-test"
UPSTREAM_KEY = "sk-ant-api03-mock-valid-key"
BAD_UPSTREAM_KEY = "sk-ant-api03-revoked-key"

STARTUP_SECONDS = 20


def binary(env_var: str, name: str) -> Path:
    """The binary named by `env_var`, else `target/debug/<name>`; fails with how to build it."""
    path = Path(os.environ.get(env_var) or TARGET / "debug" / name)
    if not path.is_file():
        raise RuntimeError(
            f"{path} does not exist. Build it with `cargo build -p switchyard -p mock-upstream` "
            f"(scripts/test does), or point {env_var} at it."
        )
    return path


class Process:
    """A child process that announces `<prefix> listening on URL` on stdout. Its stderr (and
    the rest of its stdout) go to a log file, kept for failure reports."""

    def __init__(self, name: str, argv: list[str], prefix: str, log_dir: Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=log_dir,
        )
        self.url = self._read_url(prefix)

    def _read_url(self, prefix: str) -> str:
        lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def pump() -> None:
            # Keeps draining stdout into the log after the first line, so the child never
            # blocks on a full pipe.
            first = True
            for line in stdout:
                if first:
                    lines.put(line)
                    first = False
                else:
                    self._log.write(line)
                    self._log.flush()
            if first:
                lines.put(b"")

        threading.Thread(target=pump, name=f"{self.name}-stdout", daemon=True).start()
        try:
            line = lines.get(timeout=STARTUP_SECONDS).decode(errors="replace").strip()
        except queue.Empty:
            line = ""
        marker = f"{prefix} listening on "
        if not line.startswith(marker):
            self.stop()
            raise RuntimeError(
                f"{self.name} did not start (first stdout line {line!r}, exit code "
                f"{self.proc.poll()}). Its log:\n{self.log_tail()}"
            )
        return line[len(marker):]

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def log_size(self) -> int:
        self._log.flush()
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        self._log.flush()
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell (keys, proxies, config search
    paths) leaks into the processes under test."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


class Mock:
    """The mock upstream, scripted over HTTP. Reply specs are documented in
    crates/mock-upstream/src/admin.rs."""

    def __init__(self, process: Process):
        self.process = process
        self.url = process.url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            raise AssertionError(f"mock {method} {path}: {err.code} {err.read().decode()}") from None

    def push(self, *specs: dict[str, Any]) -> None:
        """Queues replies: valid upstream calls take them in order, then the default."""
        self._call("POST", "/_mock/push", list(specs))

    def set_default(self, spec: dict[str, Any]) -> None:
        """The reply for every call once the queue is empty (until the next reset)."""
        self._call("POST", "/_mock/default", spec)

    def received(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_mock/received")

    def calls(self) -> int:
        return self._call("GET", "/_mock/calls")["calls"]

    def release(self) -> None:
        self._call("POST", "/_mock/release")

    def reset(self) -> None:
        self._call("POST", "/_mock/reset")


# --------------------------------------------------------------------------------------------
# Upstream providers. The conformance suite is one set of tests; each provider says how to
# configure a deployment that reaches the mock, how to script its errors, and how to read
# what it received. Adding Bedrock or an OpenAI-compatible upstream means adding a class here
# and its name to PROVIDERS (plus its emulation in mock-upstream).
# --------------------------------------------------------------------------------------------


@dataclass
class UpstreamCall:
    """One model call as the upstream received it, in Anthropic Messages terms: `body` has
    `messages`, `system`, `tools`, `tool_choice`, `max_tokens`… as the Messages API names them.
    Bedrock's InvokeModel body already is one (its model comes from the URL path); a provider
    with another wire format (OpenAI-compatible) converts its recorded body into this shape in
    its `calls()`, so the tests stay one suite."""

    model: str
    credential: str | None
    headers: dict[str, str]
    query: str | None
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    def blocks(self, kind: str) -> list[dict[str, Any]]:
        """Every content block of this type, across all messages, in order."""
        out = []
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, list):
                out.extend(b for b in content if b.get("type") == kind)
        return out


class AnthropicProvider:
    """`anthropic/<model>` deployments calling the mock's Messages API emulation."""

    name = "anthropic"
    # The model ids behind the tiers, as the upstream sees them.
    models = {
        "cheap": "claude-haiku-4-5",
        "balanced": "claude-sonnet-4-6",
        "frontier": "claude-opus-4-6",
    }
    # Words the diagnosis of a rejected upstream key must contain (ANT-01): what keys look
    # like, and where this one came from.
    bad_key_words = ["sk-ant-", "config.yaml"]

    def litellm_params(self, model_id: str, mock_url: str, key: str = UPSTREAM_KEY) -> dict[str, Any]:
        return {"model": f"anthropic/{model_id}", "api_base": mock_url, "api_key": key}

    # Each error class as the Messages API really sends it (provider-facts.md section C).
    ERRORS = {
        "permission": (403, "permission_error",
                       "Your API key does not have permission to use the specified resource."),
        "not_found": (404, "not_found_error", "model: claude-sonnet-4-6"),
        "bad_request": (400, "invalid_request_error",
                        "messages.0.content.0.text: Input should be a valid string"),
        "context_window": (400, "invalid_request_error",
                           "prompt is too long: 209303 tokens > 200000 maximum"),
        "rate_limit": (429, "rate_limit_error",
                       "Number of request tokens has exceeded your per-minute rate limit"),
        "overloaded": (529, "overloaded_error", "Overloaded"),
        "server": (500, "api_error", "Internal server error"),
    }

    def error(self, cls: str) -> dict[str, Any]:
        """A reply spec for one error class."""
        status, kind, message = self.ERRORS[cls]
        return {"error": {"status": status, "type": kind, "message": message}}

    # response_format json_schema, as LiteLLM maps it for Anthropic: a forced tool carrying the
    # schema, whose input the gateway returns as the message content.
    def structured_output_reply(self, answer: dict[str, Any]) -> dict[str, Any]:
        return {"tool_use": {"name": "json_tool_call", "input": answer}}

    def assert_structured_output_request(self, call: UpstreamCall, schema: dict[str, Any]) -> None:
        forced = call.body.get("tool_choice", {})
        assert forced.get("type") == "tool", f"a forced tool, got tool_choice {forced}"
        [tool] = [t for t in call.body.get("tools", []) if t.get("name") == forced.get("name")]
        assert tool["input_schema"]["properties"] == schema["properties"]

    def calls(self, received: list[dict[str, Any]], path: str = "/v1/messages") -> list[UpstreamCall]:
        """The model calls (not token counts) in arrival order."""
        return [
            UpstreamCall(
                model=r["body"].get("model"),
                credential=r["headers"].get("x-api-key"),
                headers=r["headers"],
                query=r["query"],
                body=r["body"],
            )
            for r in received
            if r["method"] == "POST" and r["path"] == path and isinstance(r["body"], dict)
        ]

    def token_counts(self, received: list[dict[str, Any]]) -> list[UpstreamCall]:
        """The token-counting calls, in arrival order."""
        return self.calls(received, "/v1/messages/count_tokens")


PROVIDERS = {"anthropic": AnthropicProvider()}


def claude_code_binary() -> Path:
    """Claude Code from $CLAUDE_CODE_BIN or the cache scripts/test installs it into."""
    explicit = os.environ.get("CLAUDE_CODE_BIN")
    candidates = [Path(explicit)] if explicit else [
        REPO / ".cache/claude-code/node_modules/.bin/claude",
        # When npm skipped the postinstall that copies the native binary into place.
        REPO / ".cache/claude-code/node_modules/@anthropic-ai/claude-code-linux-x64/claude",
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            try:
                out = subprocess.run([str(path), "--version"], capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.returncode == 0:
                return path
    found = shutil.which("claude") if not explicit else None
    hint = f" (a `claude` is on PATH at {found}, but the suite uses a pinned one)" if found else ""
    raise RuntimeError(
        "Claude Code is not installed in .cache/claude-code; scripts/test installs it, or set "
        f"CLAUDE_CODE_BIN{hint}."
    )


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def tiny_png() -> bytes:
    """A valid 1x1 red PNG, built here so the suite ships no binary fixture."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class HeldStream:
    """For "the first event reaches the client while the upstream holds back the rest": the
    test calls `arrived()` when it sees the first piece; a watchdog releases the mock after
    `seconds` anyway so a buffering gateway fails the test instead of hanging it."""

    def __init__(self, mock: Mock, seconds: float = 5.0):
        self.mock = mock
        self.fired = threading.Event()
        self.released = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired.set()
        self.mock.release()

    def __enter__(self) -> "HeldStream":
        self.timer.start()
        return self

    def arrived(self) -> None:
        """The first piece arrived: it must have come while the mock was still holding."""
        if self.released:
            return
        self.timer.cancel()
        assert not self.fired.is_set(), "the first event reached the client only after the upstream's release: buffered"
        self.released = True
        self.mock.release()

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
