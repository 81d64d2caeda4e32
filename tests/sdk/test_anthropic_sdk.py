"""The official `anthropic` SDK against the gateway's `/v1/messages` surface, for every upstream
provider (see the `gateway` fixture)."""

from __future__ import annotations

import base64

from harness import HeldStream, tiny_png

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

CACHED_USAGE = {
    "input_tokens": 10,
    "output_tokens": 5,
    "cache_read_input_tokens": 200,
    "cache_creation_input_tokens": 30,
}


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_text(ant, gateway):
    message = ant.messages.create(model="cheap", max_tokens=64, messages=say("Say: WORKS"))
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "WORKS"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    [call] = gateway.calls()
    assert call.model == gateway.model_id("cheap")
    assert call.credential == gateway.provider.credential, \
        "the upstream gets the deployment's credentials, not the gateway's key"
    assert call.body["max_tokens"] == 64
    assert call.messages == [{"role": "user", "content": "Say: WORKS"}] or call.messages == [
        {"role": "user", "content": [{"type": "text", "text": "Say: WORKS"}]}
    ]


def test_raw_stream_events(ant, gateway):
    gateway.mock.push({"text": "Hello big wide world"})
    stream = ant.messages.create(model="cheap", max_tokens=64, messages=say("Hi"), stream=True)
    types, text = [], []
    for event in stream:
        types.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text.append(event.delta.text)
    assert "".join(text) == "Hello big wide world"
    assert len(text) > 1, "streamed in pieces, not one buffered delta"
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert "message_delta" in types


def test_stream_helper_final_message(ant, gateway):
    gateway.mock.push({"text": "The quick brown fox", "usage": {"input_tokens": 12, "output_tokens": 4}})
    with ant.messages.stream(model="balanced", max_tokens=64, messages=say("Hi")) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "The quick brown fox"
    assert final.content[0].text == "The quick brown fox"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 12
    assert final.usage.output_tokens == 4
    [call] = gateway.calls()
    assert call.model == gateway.model_id("balanced") and call.stream


def test_tool_use_round_trip(ant, gateway):
    gateway.mock.push(
        {"text": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is 22 degrees and sunny in Paris."},
    )
    messages = say("What is the weather in Paris?")
    first = ant.messages.create(model="balanced", max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    tool_use = first.content[1]
    assert tool_use.name == "get_weather" and tool_use.input == {"city": "Paris"}

    messages = messages + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_use.id, "content": "22C, sunny"},
        ]},
    ]
    second = ant.messages.create(model="balanced", max_tokens=256, messages=messages, tools=[WEATHER_TOOL])
    assert second.content[0].text == "It is 22 degrees and sunny in Paris."

    first_call, second_call = gateway.calls()
    assert first_call.body["tools"][0]["name"] == "get_weather"
    assert first_call.body["tools"][0]["input_schema"] == WEATHER_TOOL["input_schema"]
    [result] = second_call.blocks("tool_result")
    assert result["tool_use_id"] == tool_use.id
    assert result["content"] in ("22C, sunny", [{"type": "text", "text": "22C, sunny"}])


def test_streamed_tool_use(ant, gateway):
    gateway.mock.push({"tool_use": {"name": "get_weather", "input": {"city": "Paris", "days": 3}}})
    with ant.messages.stream(
        model="balanced", max_tokens=256, messages=say("Weather?"), tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        final = stream.get_final_message()
    [tool_use] = final.content
    assert tool_use.type == "tool_use" and tool_use.input == {"city": "Paris", "days": 3}
    assert final.stop_reason == "tool_use"
    [call] = gateway.calls()
    assert call.body["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_image_base64_reaches_the_upstream(ant, gateway):
    data = base64.b64encode(tiny_png()).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
    message = ant.messages.create(
        model="balanced", max_tokens=64,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "Colour? Say: RED"}]}],
    )
    assert message.content[0].text == "RED"
    [call] = gateway.calls()
    assert call.blocks("image") == [image]


def test_usage_with_cached_tokens_and_cache_control_passed_through(ant, gateway):
    gateway.mock.push({"text": "cached answer", "usage": CACHED_USAGE})
    system = [{"type": "text", "text": "A long, cacheable system prompt.",
               "cache_control": {"type": "ephemeral"}}]
    message = ant.messages.create(model="cheap", max_tokens=64, system=system, messages=say("Hi"))
    assert message.usage.input_tokens == 10
    assert message.usage.output_tokens == 5
    assert message.usage.cache_read_input_tokens == 200
    assert message.usage.cache_creation_input_tokens == 30
    [call] = gateway.calls()
    if gateway.provider.keeps_cache_control:
        assert call.body["system"] == system, "cache_control reaches the upstream untouched"


def test_streamed_usage_with_cached_tokens(ant, gateway):
    gateway.mock.push({"text": "cached answer", "usage": CACHED_USAGE})
    with ant.messages.stream(model="cheap", max_tokens=64, messages=say("Hi")) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == 200
    assert final.usage.cache_creation_input_tokens == 30
    assert final.usage.input_tokens == 10
    assert final.usage.output_tokens == 5


def test_thinking_blocks_round_trip(ant, gateway):
    gateway.mock.push({"thinking": "Paris is in France.", "text": "Paris."})
    message = ant.messages.create(
        model="frontier", max_tokens=2048, messages=say("Capital of France?"),
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Paris is in France."
    assert message.content[0].signature == gateway.provider.thinking_signature
    [call] = gateway.calls()
    assert call.model == gateway.model_id("frontier")
    if gateway.provider.forwards_thinking:
        assert call.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_count_tokens(ant, gateway):
    count = ant.messages.count_tokens(model="cheap", messages=say("How many tokens is this?"))
    assert count.input_tokens > 0
    if not gateway.provider.counts_tokens_upstream:
        assert gateway.token_counts() == [] and gateway.calls() == [], "estimated, nothing sent"
        return
    [call] = gateway.token_counts()
    assert call.model == gateway.provider.counted_model(gateway.model_id("cheap")), \
        "counted by the upstream, for the alias's model"
    assert call.credential == gateway.provider.credential
    assert call.messages == say("How many tokens is this?") or call.messages == [
        {"role": "user", "content": [{"type": "text", "text": "How many tokens is this?"}]}
    ]


def test_first_delta_arrives_while_the_upstream_holds_the_rest(ant, gateway):
    gateway.mock.push({"text": "first second third", "hold_after": 3})
    with HeldStream(gateway.mock) as held:
        with ant.messages.stream(model="cheap", max_tokens=64, messages=say("Hi")) as stream:
            pieces = []
            for piece in stream.text_stream:
                pieces.append(piece)
                held.arrived()
    assert "".join(pieces) == "first second third"
