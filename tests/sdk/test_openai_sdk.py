"""The official `openai` SDK against the gateway's chat completions surface, for every upstream
provider (see the `gateway` fixture)."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from harness import HeldStream, tiny_png

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_text(oai, gateway):
    response = oai.chat.completions.create(
        model="cheap", messages=[{"role": "user", "content": "Say: WORKS"}]
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "WORKS"
    assert choice.finish_reason == "stop"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens

    [call] = gateway.calls()
    assert call.model == gateway.model_id("cheap")
    assert call.credential == gateway.provider.credential
    assert isinstance(call.body.get("max_tokens"), int) == gateway.provider.sends_default_max_tokens, \
        "a default max_tokens exactly where the upstream needs one (Anthropic requires it)"
    assert call.messages[-1]["role"] == "user"


def test_system_message_and_parameters_reach_the_upstream(oai, gateway):
    oai.chat.completions.create(
        model="balanced",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say: OK"},
        ],
        max_tokens=33,
        temperature=0.25,
        stop=["\n\nHuman:"],
    )
    [call] = gateway.calls()
    assert call.model == gateway.model_id("balanced")
    system = call.body["system"]
    system_text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert system_text == "You are terse."
    assert all(m["role"] != "system" for m in call.messages)
    assert call.body["max_tokens"] == 33
    assert call.body["temperature"] == 0.25
    assert call.body["stop_sequences"] == ["\n\nHuman:"]


def test_stream_text_and_usage(oai, gateway):
    gateway.mock.push({"text": "Hello big wide world"})
    stream = oai.chat.completions.create(
        model="cheap",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert "".join(pieces) == "Hello big wide world"
    assert len(pieces) > 1, "streamed in pieces, not one buffered chunk"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0
    [call] = gateway.calls()
    assert call.stream


def test_tool_call_round_trip(oai, gateway):
    gateway.mock.push(
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is 22 degrees and sunny in Paris."},
    )
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = oai.chat.completions.create(model="balanced", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [tool_call] = choice.message.tool_calls
    assert tool_call.type == "function"
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": "22C, sunny"})
    second = oai.chat.completions.create(model="balanced", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is 22 degrees and sunny in Paris."
    assert second.choices[0].finish_reason == "stop"

    first_call, second_call = gateway.calls()
    [tool] = first_call.body["tools"]
    assert tool["name"] == "get_weather"
    assert tool["input_schema"]["properties"] == {"city": {"type": "string"}}
    [tool_use] = second_call.blocks("tool_use")
    assert tool_use["id"] == tool_call.id and tool_use["input"] == {"city": "Paris"}
    [result] = second_call.blocks("tool_result")
    assert result["tool_use_id"] == tool_call.id
    content = result["content"]
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    assert text == "22C, sunny"


def test_streamed_tool_call(oai, gateway):
    gateway.mock.push({"tool_use": {"name": "get_weather", "input": {"city": "Paris", "days": 3}}})
    stream = oai.chat.completions.create(
        model="balanced",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                entry["id"] = delta.id or entry["id"]
                if delta.function:
                    entry["name"] = delta.function.name or entry["name"]
                    entry["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "days": 3}
    [call] = gateway.calls()
    assert call.body["tool_choice"]["type"] == "tool"
    assert call.body["tool_choice"]["name"] == "get_weather"


def test_image_data_url_reaches_the_upstream(oai, gateway):
    data = base64.b64encode(tiny_png()).decode()
    response = oai.chat.completions.create(
        model="balanced",
        messages=[{
            "role": "user",
            "content": [
                {"type": "text", "text": "What colour is this? Say: RED"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            ],
        }],
    )
    assert response.choices[0].message.content == "RED"
    [call] = gateway.calls()
    [image] = call.blocks("image")
    assert image["source"] == {"type": "base64", "media_type": "image/png", "data": data}


def test_image_http_url_is_passed_as_a_url(oai, gateway):
    url = "https://example.com/cat.png"
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]}]
    if not gateway.provider.takes_image_urls:
        # The upstream takes image bytes only; the gateway does not fetch URLs for it.
        with pytest.raises(openai.BadRequestError) as refused:
            oai.chat.completions.create(model="balanced", messages=messages)
        assert "not a URL" in str(refused.value) and "base64" in str(refused.value)
        assert gateway.calls() == [], "nothing is sent for a refused request"
        return
    oai.chat.completions.create(model="balanced", messages=messages)
    [call] = gateway.calls()
    [image] = call.blocks("image")
    assert image["source"] == {"type": "url", "url": url}


CACHED_USAGE = {
    "input_tokens": 10,
    "output_tokens": 5,
    "cache_read_input_tokens": 200,
    "cache_creation_input_tokens": 30,
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_usage_with_cached_tokens(oai, gateway, stream):
    gateway.mock.push({"text": "cached answer", "usage": CACHED_USAGE})
    request = dict(model="cheap", messages=[{"role": "user", "content": "Hi"}])
    if stream:
        usage = None
        for chunk in oai.chat.completions.create(**request, stream=True,
                                                 stream_options={"include_usage": True}):
            usage = chunk.usage or usage
    else:
        usage = oai.chat.completions.create(**request).usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 200
    assert usage.completion_tokens == 5
    # OpenAI counts cached tokens inside prompt_tokens: all input is 10 + 200 + 30.
    assert usage.prompt_tokens == 240
    assert usage.total_tokens == 245


def test_response_format_json_schema(oai, gateway):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
        "required": ["city", "temperature_c"],
        "additionalProperties": False,
    }
    answer = {"city": "Paris", "temperature_c": 22}
    gateway.mock.push(gateway.provider.structured_output_reply(answer))
    response = oai.chat.completions.create(
        model="balanced",
        messages=[{"role": "user", "content": "Weather in Paris as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}},
    )
    message = response.choices[0].message
    assert not message.tool_calls, "the structured answer is content, not a tool call"
    assert json.loads(message.content) == answer
    assert response.choices[0].finish_reason == "stop"
    [call] = gateway.calls()
    gateway.provider.assert_structured_output_request(call, schema)


def test_streamed_response_format_json_object(oai, gateway):
    answer = {"colors": ["red", "blue"], "count": 2}
    gateway.mock.push(gateway.provider.structured_output_reply(answer))
    stream = oai.chat.completions.create(
        model="balanced",
        messages=[{"role": "user", "content": "Two colours as JSON"}],
        response_format={"type": "json_object"},
        stream=True,
    )
    text, finish, tool_deltas = [], None, 0
    for chunk in stream:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            tool_deltas += len(choice.delta.tool_calls or [])
            finish = choice.finish_reason or finish
    assert tool_deltas == 0, "the structured answer streams as content, not as a tool call"
    assert json.loads("".join(text)) == answer
    assert finish == "stop"


def test_first_chunk_arrives_while_the_upstream_holds_the_rest(oai, gateway):
    # message_start, content_block_start, the "first" delta; then the mock holds.
    gateway.mock.push({"text": "first second third", "hold_after": 3})
    pieces = []
    with HeldStream(gateway.mock) as held:
        stream = oai.chat.completions.create(
            model="cheap", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                    held.arrived()
    assert "".join(pieces) == "first second third"
