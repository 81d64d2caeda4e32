"""Processes and clients the SDK suite drives: the mock upstream (scripted over its `/_mock/*`
admin routes), the gateway binary, and the upstream providers the conformance suite is
instantiated for. Nothing here asserts gateway behaviour; the tests do."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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

    def batch_delay(self, ms: int) -> None:
        """How long the emulated Message Batches API waits before answering a batch's
        requests (until the next reset)."""
        self._call("POST", "/_mock/batches", {"delay_ms": ms})

    def reset(self) -> None:
        """Back to the start: empty script and recorder, the echo default, and no AWS
        identities (providers register theirs again in `prepare`)."""
        self._call("POST", "/_mock/reset")

    def aws(self, route: str, spec: dict[str, Any]) -> None:
        """One `/_mock/aws/<route>` call: `identity`, `bedrock_api_key`, … (see
        crates/mock-upstream/src/aws/admin.rs)."""
        self._call("POST", f"/_mock/aws/{route}", spec)


# --------------------------------------------------------------------------------------------
# Upstream providers. The conformance suite is one set of tests; each provider says how to
# configure a deployment that reaches the mock, how to script its errors, and how to read
# what it received. Adding an upstream (e.g. OpenAI-compatible) means adding a class here and
# its name to PROVIDERS (plus its emulation in mock-upstream).
# --------------------------------------------------------------------------------------------


@dataclass
class UpstreamCall:
    """One model call as the upstream received it, in Anthropic Messages terms: `body` has
    `messages`, `system`, `tools`, `tool_choice`, `max_tokens`… as the Messages API names them.
    Bedrock's InvokeModel body already is one (its model comes from the URL path); a provider
    with another wire format (OpenAI-compatible) converts its recorded body into this shape in
    its `calls()`, so the tests stay one suite."""

    model: str
    # What authenticated the call: the API key, or the SigV4 access key id.
    credential: str | None
    headers: dict[str, str]
    query: str | None
    body: dict[str, Any]
    # A streaming call: `"stream": true` in the Messages body, or Bedrock's
    # InvokeModelWithResponseStream (which has no `stream` in its body).
    stream: bool = False
    # The beta flags: the `anthropic-beta` header, or Bedrock's `anthropic_beta` body field.
    betas: list[str] = field(default_factory=list)

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
    # The credential a call of a good deployment carries (UpstreamCall.credential).
    credential = UPSTREAM_KEY
    # Words the diagnosis of a rejected upstream key must contain (ANT-01): what keys look
    # like, and where this one came from.
    bad_key_words = ["sk-ant-", "config.yaml"]
    # What the bad-key deployment is configured with; no error message may contain it.
    bad_key_secrets = [BAD_UPSTREAM_KEY]
    # Whether the upstream has a status of its own for "overloaded" (Anthropic's 529), which
    # the gateway keeps; others report it as an unavailable service (a 5xx).
    has_overloaded_status = True
    # Whether its error replies carry `retry-after` (the gateway passes it on).
    sends_retry_after = True
    # Whether `cache_control` and `thinking` reach the upstream as sent, and thinking comes back
    # signed (an OpenAI-compatible upstream has neither: they are dropped or mapped).
    keeps_cache_control = True
    forwards_betas = True
    forwards_thinking = True
    thinking_signature: str | None = "mock-signature"
    # Whether the upstream counts tokens itself (else the gateway estimates, calling nothing).
    counts_tokens_upstream = True
    # Whether a max_tokens the client did not give is sent upstream (a default).
    sends_default_max_tokens = True
    # Whether an image given by http(s) URL travels as a URL (else it is refused by name).
    takes_image_urls = True

    def litellm_params(self, model_id: str, mock_url: str, bad_key: bool = False) -> dict[str, Any]:
        key = BAD_UPSTREAM_KEY if bad_key else UPSTREAM_KEY
        return {"model": f"anthropic/{model_id}", "api_base": mock_url, "api_key": key}

    def prepare(self, mock: Mock) -> None:
        """After each mock reset: nothing to register, the mock takes UPSTREAM_KEY itself."""

    def counted_model(self, model_id: str) -> str:
        """The model a token count is asked for, for a deployment of `model_id`."""
        return model_id

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

    def stream_error_after(self, events: int) -> dict[str, Any]:
        """A `stream_error_after` spec: the upstream's "overloaded" arriving after `events`
        events of a 200 stream."""
        _, kind, message = self.ERRORS["overloaded"]
        return {"events": events, "type": kind, "message": message}

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
                stream=r["body"].get("stream") is True,
                betas=[b.strip() for b in r["headers"].get("anthropic-beta", "").split(",")
                       if b.strip()],
            )
            for r in received
            if r["method"] == "POST" and r["path"] == path and isinstance(r["body"], dict)
        ]

    def token_counts(self, received: list[dict[str, Any]]) -> list[UpstreamCall]:
        """The token-counting calls, in arrival order."""
        return self.calls(received, "/v1/messages/count_tokens")


# The AWS test identity Bedrock deployments sign with: temporary credentials of an SSO role,
# as the gateway's users have them (the session token travels in x-amz-security-token).
AWS_ACCOUNT = "123456789012"
AWS_ACCESS_KEY_ID = "ASIAMOCKSDKSUITE0001"
AWS_SECRET_ACCESS_KEY = "mockSdkSuiteSecretAccessKey0000000000001"
AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEMockSdkSuiteSessionToken//////////wEaCXVzLWVhc3QtMQ=="
AWS_ARN = (f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/"
           "AWSReservedSSO_BedrockUsers_0123456789abcdef/dev@example.com")
# A key id the mock has never heard of: Bedrock's UnrecognizedClientException (AWS-01).
AWS_UNKNOWN_ACCESS_KEY_ID = "AKIAMOCKSDKUNKNOWN01"
AWS_UNKNOWN_SECRET = "mockSdkSuiteUnknownSecretAccessKey000001"


def sigv4_access_key(authorization: str | None) -> str | None:
    """The access key id of `AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
    …`, or the key of `Bearer KEY` (a Bedrock API key)."""
    if not authorization:
        return None
    if authorization.startswith("Bearer "):
        return authorization[len("Bearer "):]
    for part in authorization.split(" ", 1)[-1].split(","):
        name, _, value = part.strip().partition("=")
        if name == "Credential":
            return value.split("/", 1)[0]
    return None


class BedrockProvider(AnthropicProvider):
    """`bedrock/<model id>` deployments signing with SigV4 against the mock's Bedrock runtime
    emulation (`aws_bedrock_runtime_endpoint`). InvokeModel's body is an Anthropic Messages
    body (with `anthropic_version`, without `model` and `stream`), so the structured-output
    hooks are Anthropic's."""

    name = "bedrock"
    # One tier per model-id form: a geo inference profile, an inference-profile ARN, a bare
    # foundation-model id (the mock does not check what a model supports).
    models = {
        "cheap": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "balanced": (f"arn:aws:bedrock:us-east-1:{AWS_ACCOUNT}:inference-profile/"
                     "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        "frontier": "anthropic.claude-3-haiku-20240307-v1:0",
    }
    credential = AWS_ACCESS_KEY_ID
    # AWS-01: not a missing permission, and where the unknown key came from.
    bad_key_words = ["not a missing permission", "config.yaml"]
    bad_key_secrets = [AWS_UNKNOWN_ACCESS_KEY_ID, AWS_UNKNOWN_SECRET]
    has_overloaded_status = False
    # Bedrock's ThrottlingException carries no retry-after (epam/ai-dial-adapter-bedrock#371
    # compared it with the Anthropic API's), so none is scripted.
    sends_retry_after = False
    # A max_tokens the client did not give is sent (the Anthropic body requires one).
    sends_default_max_tokens = True

    def litellm_params(self, model_id: str, mock_url: str, bad_key: bool = False) -> dict[str, Any]:
        params = {
            "model": f"bedrock/{model_id}",
            "aws_region_name": "us-east-1",
            "aws_bedrock_runtime_endpoint": mock_url,
        }
        if bad_key:
            params |= {"aws_access_key_id": AWS_UNKNOWN_ACCESS_KEY_ID,
                       "aws_secret_access_key": AWS_UNKNOWN_SECRET}
        else:
            params |= {"aws_access_key_id": AWS_ACCESS_KEY_ID,
                       "aws_secret_access_key": AWS_SECRET_ACCESS_KEY,
                       "aws_session_token": AWS_SESSION_TOKEN}
        return params

    def prepare(self, mock: Mock) -> None:
        """A reset forgets every AWS identity: register the suite's again."""
        mock.aws("identity", {
            "access_key_id": AWS_ACCESS_KEY_ID,
            "secret_access_key": AWS_SECRET_ACCESS_KEY,
            "session_token": AWS_SESSION_TOKEN,
            "arn": AWS_ARN,
        })

    def counted_model(self, model_id: str) -> str:
        """CountTokens takes the foundation model, not an inference profile or its ARN."""
        model_id = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
        geo, _, rest = model_id.partition(".")
        return rest if geo != "anthropic" and rest.startswith("anthropic.") else model_id

    # Each error class as Bedrock really sends it (provider-facts.md A5/A6; DIAGNOSES.md
    # AWS-05, AWS-10, AWS-15 … AWS-17). The mock fills in {principal}, {action} and {resource}
    # from the call. Anthropic's validation messages pass through in a ValidationException;
    # "overloaded" is a ServiceUnavailableException, as the mock maps overloaded_error.
    ERRORS = {
        "permission": (403, "AccessDeniedException",
                       "User: {principal} is not authorized to perform: {action} on resource: "
                       "{resource} because no identity-based policy allows the {action} action"),
        "not_found": (400, "ValidationException", "The provided model identifier is invalid."),
        "bad_request": (400, "ValidationException",
                        "messages.0.content.0.text: Input should be a valid string"),
        "context_window": (400, "ValidationException",
                           "The model returned the following errors: prompt is too long: "
                           "209303 tokens > 200000 maximum"),
        "rate_limit": (429, "ThrottlingException",
                       "Too many requests, please wait before trying again."),
        "overloaded": (503, "ServiceUnavailableException",
                       "The service isn't currently available. Try again later."),
        "server": (500, "InternalServerException",
                   "An internal server error occurred. Retry your request."),
    }

    def calls(
        self,
        received: list[dict[str, Any]],
        operations: tuple[str, ...] = ("invoke", "invoke-with-response-stream"),
    ) -> list[UpstreamCall]:
        """InvokeModel and InvokeModelWithResponseStream calls in arrival order: the model from
        the URL path (decoded), the body as sent."""
        out = []
        for r in received:
            if r["method"] != "POST" or not r["path"].startswith("/model/"):
                continue
            model, _, operation = r["path"][len("/model/"):].rpartition("/")
            if operation not in operations or not isinstance(r["body"], dict):
                continue
            out.append(UpstreamCall(
                model=unquote(model),
                credential=sigv4_access_key(r["headers"].get("authorization")),
                headers=r["headers"],
                query=r["query"],
                body=r["body"],
                stream=operation == "invoke-with-response-stream",
                betas=list(r["body"].get("anthropic_beta", [])),
            ))
        return out

    def token_counts(self, received: list[dict[str, Any]]) -> list[UpstreamCall]:
        """CountTokens calls, with the InvokeModel body they carry (base64 in
        `input.invokeModel.body`) as the body."""
        calls = self.calls(received, ("count-tokens",))
        for call in calls:
            encoded = call.body.get("input", {}).get("invokeModel", {}).get("body")
            call.body = json.loads(base64.b64decode(encoded)) if isinstance(encoded, str) else {}
        return calls


def converse_to_messages(body: dict[str, Any]) -> dict[str, Any]:
    """A recorded Converse body in Anthropic Messages terms, so the shared suite reads it like
    any other upstream's: `inferenceConfig` → max_tokens/temperature/top_p/stop_sequences,
    `toolConfig` → tools/tool_choice, `additionalModelRequestFields` → top-level fields, content
    blocks → Messages blocks. A `cachePoint` after a block is Converse's cache breakpoint: it
    reads back as that block's `cache_control: {"type": "ephemeral"}` (a TTL does not travel)."""

    def blocks(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for block in content:
            if "cachePoint" in block and out:
                out[-1]["cache_control"] = {"type": "ephemeral"}
            elif "text" in block:
                out.append({"type": "text", "text": block["text"]})
            elif "image" in block:
                image = block["image"]
                out.append({"type": "image", "source": {
                    "type": "base64", "media_type": f"image/{image['format']}",
                    "data": image["source"]["bytes"]}})
            elif "toolUse" in block:
                use = block["toolUse"]
                out.append({"type": "tool_use", "id": use["toolUseId"], "name": use["name"],
                            "input": use["input"]})
            elif "toolResult" in block:
                result = block["toolResult"]
                converted = {"type": "tool_result", "tool_use_id": result["toolUseId"],
                             "content": blocks(result.get("content", []))}
                if result.get("status") == "error":
                    converted["is_error"] = True
                out.append(converted)
            elif "reasoningContent" in block:
                text = block["reasoningContent"].get("reasoningText", {})
                out.append({"type": "thinking", "thinking": text.get("text", ""),
                            "signature": text.get("signature")})
            else:
                out.append({"type": next(iter(block), "unknown"), **block})
        return out

    out: dict[str, Any] = dict(body.get("additionalModelRequestFields") or {})
    out["messages"] = [{"role": m["role"], "content": blocks(m.get("content", []))}
                       for m in body.get("messages", [])]
    if body.get("system"):
        out["system"] = blocks(body["system"])
    config = body.get("inferenceConfig") or {}
    for wire, name in [("maxTokens", "max_tokens"), ("temperature", "temperature"),
                       ("topP", "top_p"), ("stopSequences", "stop_sequences")]:
        if wire in config:
            out[name] = config[wire]
    tools = (body.get("toolConfig") or {}).get("tools", [])
    specs = [t["toolSpec"] for t in tools if "toolSpec" in t]
    if specs:
        out["tools"] = [{"name": t["name"], "input_schema": t["inputSchema"]["json"],
                         **({"description": t["description"]} if "description" in t else {})}
                        for t in specs]
    choice = (body.get("toolConfig") or {}).get("toolChoice")
    if choice:
        kind = next(iter(choice))
        out["tool_choice"] = {"type": kind, **choice[kind]}
    return out


class BedrockConverseProvider(BedrockProvider):
    """`bedrock/converse/<model id>` deployments of non-Claude models (Nova, Llama, Mistral)
    calling the mock's Converse emulation, with the same SigV4 identity and AWS errors as
    InvokeModel. Recorded Converse bodies are read back in Messages terms
    (`converse_to_messages`)."""

    name = "bedrock-converse"
    models = {
        "cheap": "us.amazon.nova-lite-v1:0",
        "balanced": "us.meta.llama3-3-70b-instruct-v1:0",
        "frontier": "mistral.mistral-large-2407-v1:0",
    }
    # Converse sends maxTokens only when asked (or set in model_info): each model family has
    # its own default and ceiling, so a default that suits Claude could fail on Llama.
    sends_default_max_tokens = False
    # Converse takes image bytes (or S3), not URLs; the gateway does not fetch them.
    takes_image_urls = False

    def litellm_params(self, model_id: str, mock_url: str, bad_key: bool = False) -> dict[str, Any]:
        params = super().litellm_params(model_id, mock_url, bad_key)
        params["model"] = f"bedrock/converse/{model_id}"
        return params

    def counted_model(self, model_id: str) -> str:
        """CountTokens takes the foundation model: the id without its geo prefix."""
        geo, _, rest = model_id.partition(".")
        return rest if geo in ("us", "eu", "apac", "global", "jp") else model_id

    def calls(
        self,
        received: list[dict[str, Any]],
        operations: tuple[str, ...] = ("converse", "converse-stream"),
    ) -> list[UpstreamCall]:
        calls = super().calls(received, operations)
        streams = [r["path"].endswith("/converse-stream") for r in received
                   if r["method"] == "POST" and r["path"].startswith("/model/")
                   and r["path"].rpartition("/")[2] in operations and isinstance(r["body"], dict)]
        for call, stream in zip(calls, streams):
            call.body = converse_to_messages(call.body)
            call.stream = stream
            call.betas = list(call.body.get("anthropic_beta", []))
        return calls

    def token_counts(self, received: list[dict[str, Any]]) -> list[UpstreamCall]:
        """CountTokens calls, with their `input.converse` read as a Messages body."""
        calls = BedrockProvider.calls(self, received, ("count-tokens",))
        for call in calls:
            call.body = converse_to_messages(call.body.get("input", {}).get("converse", {}))
        return calls


def openai_to_messages(body: dict[str, Any]) -> dict[str, Any]:
    """A recorded chat completions body read back in Anthropic Messages terms, so the shared
    suite asserts one vocabulary: system messages → `system`, `tool_calls` → `tool_use`
    blocks, `tool` messages → `tool_result` blocks in a user turn, `image_url` → `image`,
    `stop` → `stop_sequences`, `max_completion_tokens` → `max_tokens`."""

    def image(url: str) -> dict[str, Any]:
        if url.startswith("data:"):
            head, _, data = url[len("data:"):].partition(",")
            return {"type": "image", "source": {"type": "base64",
                                                "media_type": head.split(";")[0], "data": data}}
        return {"type": "image", "source": {"type": "url", "url": url}}

    def blocks(content: Any) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        out = []
        for part in content or []:
            if part.get("type") == "text":
                out.append({"type": "text", "text": part["text"]})
            elif part.get("type") == "image_url":
                out.append(image(part["image_url"]["url"]))
        return out

    out: dict[str, Any] = {k: v for k, v in body.items()
                           if k not in ("messages", "tools", "tool_choice", "stop",
                                        "max_completion_tokens", "stream_options")}
    if "max_completion_tokens" in body:
        out["max_tokens"] = body["max_completion_tokens"]
    if body.get("stop"):
        stop = body["stop"]
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for m in body.get("messages", []):
        role = m.get("role")
        if role in ("system", "developer"):
            system.extend(blocks(m.get("content")))
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": m.get("tool_call_id"),
                      "content": m.get("content")}
            if messages and messages[-1]["role"] == "user" and messages[-1].get("_results"):
                messages[-1]["content"].append(result)
            else:
                messages.append({"role": "user", "content": [result], "_results": True})
        elif role == "user":
            content = m.get("content")
            if messages and messages[-1].get("_results"):
                messages[-1]["content"].extend(blocks(content))
                messages[-1].pop("_results")
            else:
                messages.append({"role": "user", "content": content if isinstance(content, str)
                                 else blocks(content)})
        elif role == "assistant":
            content = blocks(m.get("content"))
            for call in m.get("tool_calls") or []:
                arguments = call["function"].get("arguments") or "{}"
                content.append({"type": "tool_use", "id": call.get("id"),
                                "name": call["function"]["name"], "input": json.loads(arguments)})
            messages.append({"role": "assistant", "content": content})
    for m in messages:
        m.pop("_results", None)
    if system:
        out["system"] = system
    out["messages"] = messages
    if body.get("tools"):
        out["tools"] = [{"name": t["function"]["name"],
                         "input_schema": t["function"].get("parameters"),
                         **({"description": t["function"]["description"]}
                            if "description" in t["function"] else {})}
                        for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        out["tool_choice"] = {"type": {"required": "any"}.get(choice, choice)}
    elif isinstance(choice, dict):
        out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    return out


class OpenAiProvider(AnthropicProvider):
    """`openai/<model>` deployments with an `api_base` at the mock's chat completions
    emulation (`/v1/chat/completions`, bearer key). Recorded bodies are read back in Messages
    terms (`openai_to_messages`); errors are OpenAI's, with their codes."""

    name = "openai"
    models = {"cheap": "gpt-4o-mini", "balanced": "gpt-4o", "frontier": "o3-mini"}
    credential = UPSTREAM_KEY
    # OAI-01: where the rejected key came from.
    bad_key_words = ["did not accept", "config.yaml"]
    bad_key_secrets = [BAD_UPSTREAM_KEY]
    # 503 "overloaded" is classified as overloaded (the client sees 529).
    has_overloaded_status = True
    sends_retry_after = True
    # Chat completions take no required max_tokens: none is invented.
    sends_default_max_tokens = False
    # Chat completions have no cache_control, no Anthropic thinking and no token counting.
    keeps_cache_control = False
    forwards_betas = False
    forwards_thinking = False
    thinking_signature = None
    counts_tokens_upstream = False

    def litellm_params(self, model_id: str, mock_url: str, bad_key: bool = False) -> dict[str, Any]:
        key = BAD_UPSTREAM_KEY if bad_key else UPSTREAM_KEY
        return {"model": f"openai/{model_id}", "api_base": f"{mock_url}/v1", "api_key": key}

    ERRORS = {
        "permission": (403, "invalid_request_error",
                       "You do not have permission to use this model with this project."),
        "not_found": (404, "model_not_found",
                      "The model `gpt-4o` does not exist or you do not have access to it."),
        "bad_request": (400, "invalid_request_error",
                        "messages.0.content.0.text: Input should be a valid string"),
        "context_window": (400, "context_length_exceeded",
                           "This model's maximum context length is 200000 tokens. However, your "
                           "messages resulted in 209303 tokens."),
        "rate_limit": (429, "rate_limit_exceeded",
                       "Rate limit reached for gpt-4o on requests per min (RPM): Limit 3."),
        "overloaded": (503, "server_error",
                       "The engine is currently overloaded, please try again later."),
        "server": (500, "server_error",
                   "The server had an error while processing your request."),
    }

    def structured_output_reply(self, answer: dict[str, Any]) -> dict[str, Any]:
        """OpenAI answers structured output as JSON text."""
        return {"text": json.dumps(answer)}

    def assert_structured_output_request(self, call: UpstreamCall, schema: dict[str, Any]) -> None:
        fmt = call.body.get("response_format", {})
        assert fmt.get("type") == "json_schema", f"response_format passed on, got {fmt}"
        assert fmt["json_schema"]["schema"]["properties"] == schema["properties"]

    def calls(self, received: list[dict[str, Any]], path: str = "") -> list[UpstreamCall]:
        out = []
        for r in received:
            if r["method"] != "POST" or not r["path"].endswith("/chat/completions"):
                continue
            if not isinstance(r["body"], dict):
                continue
            auth = r["headers"].get("authorization", "")
            out.append(UpstreamCall(
                model=r["body"].get("model"),
                credential=auth[len("Bearer "):] if auth.startswith("Bearer ") else None,
                headers=r["headers"],
                query=r["query"],
                body=openai_to_messages(r["body"]),
                stream=r["body"].get("stream") is True,
            ))
        return out

    def token_counts(self, received: list[dict[str, Any]]) -> list[UpstreamCall]:
        """Chat completions servers count no tokens: the gateway estimates, nothing is sent."""
        return []


PROVIDERS = {
    "anthropic": AnthropicProvider(),
    "bedrock": BedrockProvider(),
    "bedrock-converse": BedrockConverseProvider(),
    "openai": OpenAiProvider(),
}


def claude_code_versions() -> list[str]:
    """The pinned Claude Code versions (tests/sdk/claude-code-versions.txt), newest first."""
    lines = (REPO / "tests/sdk/claude-code-versions.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def codex_versions() -> list[str]:
    """The pinned Codex CLI versions (tests/sdk/codex-versions.txt), newest first."""
    lines = (REPO / "tests/sdk/codex-versions.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def codex_bin_dir(version: str) -> Path:
    """The directory holding Codex `version`'s `codex`, from the cache scripts/test installs it
    into ($CODEX_DIR, else .cache/codex/<version>): put it on PATH for `switchyard codex`."""
    root = Path(os.environ.get("CODEX_DIR", REPO / ".cache/codex")) / version
    path = root / "node_modules/.bin/codex"
    if path.is_file() and os.access(path, os.X_OK):
        try:
            out = subprocess.run([str(path), "--version"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and version in out.stdout.decode(errors="replace"):
            return path.parent
    raise RuntimeError(
        f"Codex {version} is not installed in {root}; scripts/test installs every version "
        f"listed in tests/sdk/codex-versions.txt."
    )


def claude_code_binary(version: str) -> Path:
    """Claude Code `version` from the cache scripts/test installs it into ($CLAUDE_CODE_DIR,
    else .cache/claude-code/<version>)."""
    root = Path(os.environ.get("CLAUDE_CODE_DIR", REPO / ".cache/claude-code")) / version
    candidates = [
        root / "node_modules/.bin/claude",
        # When npm skipped the postinstall that copies the native binary into place.
        root / "node_modules/@anthropic-ai/claude-code-linux-x64/claude",
    ]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            try:
                out = subprocess.run([str(path), "--version"], capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.returncode == 0 and version in out.stdout.decode(errors="replace"):
                return path
    found = shutil.which("claude")
    hint = f" (a `claude` is on PATH at {found}, but the suite uses pinned ones)" if found else ""
    raise RuntimeError(
        f"Claude Code {version} is not installed in {root}; scripts/test installs every version "
        f"listed in tests/sdk/claude-code-versions.txt{hint}."
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


class RecordingRelay:
    """A loopback HTTP relay in front of the gateway that records each request a client sends
    (method, path, body) and streams the gateway's answer back as it arrives, so a test can
    compare what a real client sent with what the upstream received."""

    def __init__(self, target: str):
        import http.client
        import http.server
        from urllib.parse import urlsplit

        self.requests: list[dict[str, Any]] = []
        host = urlsplit(target)
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                relay.requests.append({"method": self.command, "path": self.path, "body": body})
                upstream = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                upstream.request(self.command, self.path, body=raw or None, headers=headers)
                answer = upstream.getresponse()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                if self.command == "HEAD":
                    self.send_header("content-length", "0")
                    self.end_headers()
                    upstream.close()
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                while chunk := answer.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                upstream.close()

            do_GET = do_POST = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="relay", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
