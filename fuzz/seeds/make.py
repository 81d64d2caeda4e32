#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from the test fixtures, the example
configs and the wire formats in the provider research notes. Re-run after a format
changes; `scripts/fuzz` fuzzes from these seeds (new inputs go to fuzz/work/, not here)."""

import base64
import glob
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "crates/switchyard/tests/fixtures")
OUT = os.path.join(ROOT, "fuzz/corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def j(v):
    return json.dumps(v, separators=(",", ":"))


# --- config ---------------------------------------------------------------------------------
for path in sorted(glob.glob(os.path.join(FIX, "litellm-configs/*.yaml"))) + [
    os.path.join(FIX, "litellm_tiers.yaml"),
    os.path.join(ROOT, "examples/quickstart.yaml"),
    os.path.join(ROOT, "examples/anthropic.yaml"),
]:
    write("config", os.path.basename(path), open(path, "rb").read())
write("config", "env-interpolation.yaml", """\
model_list:
  - model_name: cheap
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: os.environ/FUZZ_SECRET
      rpm: os.environ/FUZZ_NUMBER
      timeout: "os.environ/FUZZ_NUMBER"
  - model_name: local
    litellm_params:
      model: ollama/llama3.1
      api_base: os.environ/UNSET_BASE
general_settings:
  master_key: os.environ/FUZZ_SECRET
litellm_settings:
  drop_params: os.environ/FUZZ_FLAG
  cache: true
  cache_params: {type: local, ttl: 60}
environment_variables:
  EXTRA: "value"
""")

# --- request bodies -----------------------------------------------------------------------------
openai_bodies = {
    "minimal": {"model": "cheap", "messages": [{"role": "user", "content": "hi"}]},
    "system-stop-sampling": {
        "model": "balanced", "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Count to 3"}]}],
        "max_tokens": 20, "temperature": 0.2, "top_p": 0.9, "stop": ["4", "four"], "user": "alice",
        "stream": True, "stream_options": {"include_usage": True}},
    "tools": {
        "model": "balanced", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False},
    "json-schema-gateway-params": {
        "model": "cheap", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": True,
                            "schema": {"type": "object"}}},
        "metadata": {"tags": ["a"]}, "tags": ["b"], "fallbacks": ["other"], "num_retries": 2,
        "cache": {"no-cache": True, "ttl": 30, "namespace": "ns"}, "seed": 7, "logprobs": True},
}
for path in sorted(glob.glob(os.path.join(FIX, "anthropic/*.json"))):
    openai_bodies["fixture-" + os.path.basename(path)[:-5]] = json.load(open(path))["openai_request"]
for name, body in openai_bodies.items():
    write("openai_request", name + ".json", j(body))

anthropic_bodies = {
    "minimal": {"model": "balanced", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
    "system-blocks-stream": {
        "model": "balanced", "max_tokens": 100, "stream": True, "temperature": 0.5, "top_k": 5,
        "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]},
                     {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]},
    "tools-images-thinking": {
        "model": "balanced", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u"},
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "text", "text": "where?"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}],
                 "is_error": False}]}]},
}
bed = json.load(open(os.path.join(FIX, "bedrock/messages_betas_cache_thinking.json")))
for name, body in anthropic_bodies.items():
    write("anthropic_request", name + ".json", j(body))
write("anthropic_request", "fixture-betas.json",
      "beta:" + bed["headers"]["anthropic-beta"] + "\n" + j(bed["anthropic_request"]))

responses_bodies = {
    "string-input": {"model": "cheap", "input": "hi", "instructions": "Be terse.", "max_output_tokens": 50},
    "items-tools": {
        "model": "balanced", "stream": True, "store": False, "temperature": 0.1,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "It is sunny."}]},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}], "encrypted_content": "e"}],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True},
                  {"type": "web_search_preview"}, {"type": "code_interpreter"}],
        "tool_choice": "auto", "parallel_tool_calls": True, "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}}},
        "metadata": {"k": "v"}, "previous_response_id": "resp_1"},
}
for name, body in responses_bodies.items():
    write("responses_request", name + ".json", j(body))

# --- cache_key: the surface byte, then a body ---------------------------------------------------
for name in ("minimal", "json-schema-gateway-params", "tools"):
    write("cache_key", "openai-" + name, b"\x00" + j(openai_bodies[name]).encode())
for name in ("minimal", "tools-images-thinking"):
    write("cache_key", "anthropic-" + name, b"\x01" + j(anthropic_bodies[name]).encode())
write("cache_key", "responses-items-tools", b"\x02" + j(responses_bodies["items-tools"]).encode())

# --- SSE: the control byte (format in the low 2 bits, piece size above), then the body ----------
def sse(events):
    return "".join(f"event: {e}\ndata: {j(d)}\n\n" if e else f"data: {d if isinstance(d, str) else j(d)}\n\n"
                   for e, d in events)

anthropic_stream = [
    ("message_start", {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
     "model": "claude-sonnet-4-6", "content": [], "stop_reason": None,
     "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1,
               "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 300}}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("content_block_start", {"type": "content_block_start", "index": 2, "content_block":
        {"type": "tool_use", "id": "toolu_1", "name": "json_tool_call", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"output_tokens": 5}}),
    ("message_stop", {"type": "message_stop"}),
]
write("sse", "anthropic-answer", b"\x00" + sse(anthropic_stream).encode())
write("sse", "anthropic-json-mode-split7", bytes([1 | 7 << 2]) + sse(anthropic_stream).encode())
write("sse", "anthropic-error", b"\x00" + sse(anthropic_stream[:2] + [("error", {"type": "error",
      "error": {"type": "overloaded_error", "message": "Overloaded"}})]).encode())

def chunk(delta, finish=None, usage=None):
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        c["usage"] = usage
    return (None, c)

openai_stream = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}), chunk({"content": "lo"}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":1}"}}]}),
    chunk({}, "tool_calls"),
    (None, {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
                      "prompt_tokens_details": {"cached_tokens": 4}}}),
    (None, "[DONE]"),
]
write("sse", "openai-chat", b"\x02" + sse(openai_stream).encode())
write("sse", "openai-chat-split3", bytes([2 | 3 << 2]) + sse(openai_stream).encode())
write("sse", "openai-chat-error", b"\x02" + sse(openai_stream[:2] + [(None, {"error": {"message": "Rate limit",
      "type": "rate_limit_error", "code": "rate_limit_exceeded"}})]).encode())

responses_stream = [
    ("response.created", {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4o"}}),
    ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
      "item": {"type": "reasoning", "id": "rs_1"}}),
    ("response.reasoning_summary_text.delta", {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "t"}),
    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0,
      "item": {"type": "reasoning", "encrypted_content": "enc"}}),
    ("response.output_item.added", {"type": "response.output_item.added", "output_index": 1,
      "item": {"type": "message", "id": "m1"}}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "output_index": 1, "delta": "Hi"}),
    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 1, "item": {"type": "message"}}),
    ("response.output_item.added", {"type": "response.output_item.added", "output_index": 2,
      "item": {"type": "function_call", "call_id": "c1", "name": "f"}}),
    ("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{}"}),
    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 2, "item": {"type": "function_call"}}),
    ("response.completed", {"type": "response.completed", "response": {"id": "resp_1", "status": "completed",
      "usage": {"input_tokens": 5, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 1}}}}),
]
write("sse", "openai-responses", b"\x03" + sse(responses_stream).encode())
write("sse", "openai-responses-failed", b"\x03" + sse(responses_stream[:1] + [("response.failed",
      {"type": "response.failed", "response": {"error": {"code": "server_error", "message": "boom"}}})]).encode())

# --- Bedrock event-stream frames -------------------------------------------------------------
def frame(headers, payload):
    hb = b""
    for k, v in headers:
        kb, vb = k.encode(), v.encode()
        hb += bytes([len(kb)]) + kb + b"\x07" + struct.pack(">H", len(vb)) + vb
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + hb + payload
    return msg + struct.pack(">I", zlib.crc32(msg) & 0xFFFFFFFF)

def invoke_chunk(event):
    return frame([(":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")],
                 j({"bytes": base64.b64encode(j(event).encode()).decode()}).encode())

invoke = b"".join(invoke_chunk(d) for _, d in anthropic_stream[:-1])
invoke += invoke_chunk({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12,
    "outputTokenCount": 5, "invocationLatency": 1798, "firstByteLatency": 1507,
    "cacheReadInputTokenCount": 2000, "cacheWriteInputTokenCount": 100}})
write("bedrock_eventstream", "invoke-answer", b"\x00" + invoke)
write("bedrock_eventstream", "invoke-json-mode-split9", bytes([2 | 9 << 2]) + invoke)
exception = frame([(":exception-type", "throttlingException"), (":content-type", "application/json"),
                   (":message-type", "exception")], j({"message": "Too many requests"}).encode())
write("bedrock_eventstream", "invoke-exception", b"\x00" + invoke_chunk(anthropic_stream[0][1]) + exception)

def conv(kind, payload):
    return frame([(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
                 j(payload).encode())

converse = b"".join([
    conv("messageStart", {"role": "assistant"}),
    conv("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
    conv("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
    conv("contentBlockStop", {"contentBlockIndex": 0}),
    conv("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
    conv("contentBlockStop", {"contentBlockIndex": 1}),
    conv("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
    conv("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
    conv("contentBlockStop", {"contentBlockIndex": 2}),
    conv("messageStop", {"stopReason": "tool_use"}),
    conv("metadata", {"usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14,
                                "cacheReadInputTokens": 2, "cacheWriteInputTokens": 1},
                      "metrics": {"latencyMs": 100}}),
])
write("bedrock_eventstream", "converse-answer", b"\x01" + converse)
write("bedrock_eventstream", "converse-json-mode-split5", bytes([3 | 5 << 2]) + converse)

# --- keys_admin: NUL-separated requests, each a route byte then a JSON body ------------------
def req(route, body):
    return bytes([route]) + (j(body).encode() if body is not None else b"")

SECRET = "sk-fuzz-seeded-secret-0001"
sequences = {
    "generate-update-delete": [
        req(0, {"key": "sk-new-1", "key_alias": "new", "models": ["cheap"], "max_budget": 10.5,
                "budget_duration": "30d", "duration": "1h", "tpm_limit": 100, "rpm_limit": 5,
                "metadata": {"owner": "x"}, "tags": ["ci"], "soft_budget": 2.0, "team_id": "t1"}),
        req(1, {"key": "sk-new-1", "key_alias": "renamed", "expires": "2030-01-01T00:00:00Z",
                "model_max_budget": {"cheap": {"budget_limit": 1}}, "allowed_routes": ["llm_api_routes"]}),
        req(3, {"key": SECRET}), req(4, {"key": SECRET}), req(5, {"new_key": "sk-regen-1"}),
        req(2, {"keys": ["sk-new-1"], "key_aliases": []}), req(14, {"page": 1, "size": 10, "team_id": "t1"}),
        req(15, None)],
    "teams-users-customers": [
        req(6, {"team_alias": "blue", "max_budget": 5, "models": ["cheap"], "tpm_limit": 10,
                "members_with_roles": [{"role": "admin", "user_id": "u1"}], "metadata": {}}),
        req(7, {"team_id": "t1", "blocked": True, "budget_duration": "1d"}),
        req(9, {"team_id": "t1", "member": {"role": "user", "user_id": "u2"}}),
        req(10, {"user_id": "u3", "user_email": "a@b.c", "user_role": "internal_user", "teams": ["t1"],
                 "max_budget": 1}),
        req(11, {"user_id": "c2", "max_budget": 3, "budget_duration": "7d", "blocked": False}),
        req(12, {"user_id": "c1", "blocked": True}), req(13, {"user_ids": ["c2"]}),
        req(8, {"team_ids": ["t1"]})],
}
for name, reqs in sequences.items():
    write("keys_admin", name, b"\x00".join(reqs))
