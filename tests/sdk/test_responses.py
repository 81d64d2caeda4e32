"""The official `openai` SDK against the gateway's Responses API surface (`/v1/responses`),
for every upstream provider (see the `gateway` fixture)."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_text(oai, gateway):
    response = oai.responses.create(model="cheap", input="Say: WORKS", instructions="Be brief.")
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.output_text == "WORKS"
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief."

    [call] = gateway.calls()
    assert call.model == gateway.model_id("cheap")
    assert call.credential == gateway.provider.credential
    system = call.body["system"]
    text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert text == "Be brief."
    assert call.messages[-1]["role"] == "user"


def test_function_calling_round_trip(oai, gateway):
    gateway.mock.push(
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is 22 degrees and sunny in Paris."},
    )
    conversation = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = oai.responses.create(model="balanced", input=conversation, tools=[WEATHER_TOOL], store=False)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}

    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation.append({"type": "function_call_output", "call_id": call.call_id, "output": "22C, sunny"})
    second = oai.responses.create(model="balanced", input=conversation, tools=[WEATHER_TOOL])
    assert second.output_text == "It is 22 degrees and sunny in Paris."

    first_call, second_call = gateway.calls()
    [tool] = first_call.body["tools"]
    assert tool["name"] == "get_weather"
    [tool_use] = second_call.blocks("tool_use")
    assert tool_use["id"] == call.call_id and tool_use["input"] == {"city": "Paris"}
    [result] = second_call.blocks("tool_result")
    assert result["tool_use_id"] == call.call_id
    content = result["content"]
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    assert text == "22C, sunny"


def test_previous_response_id_continues_the_conversation(oai, gateway):
    gateway.mock.push({"text": "Hello Ada."}, {"text": "Your name is Ada."})
    first = oai.responses.create(model="balanced", input="My name is Ada.")
    second = oai.responses.create(model="balanced", input="What is my name?", previous_response_id=first.id)
    assert second.output_text == "Your name is Ada."
    assert second.previous_response_id == first.id
    _, call = gateway.calls()
    texts = [
        "".join(b.get("text", "") for b in m["content"]) if isinstance(m["content"], list) else m["content"]
        for m in call.messages
    ]
    assert texts == ["My name is Ada.", "Hello Ada.", "What is my name?"]

    assert oai.responses.retrieve(first.id).output_text == "Hello Ada."
    with pytest.raises(openai.NotFoundError) as caught:
        oai.responses.create(model="balanced", input="x", previous_response_id="resp_unknown")
    assert "RSP-02" in str(caught.value.body) or "Fix:" in caught.value.message


def test_structured_output_json_schema(oai, gateway):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"}},
        "required": ["city", "temperature_c"],
        "additionalProperties": False,
    }
    answer = {"city": "Paris", "temperature_c": 22}
    gateway.mock.push(gateway.provider.structured_output_reply(answer))
    response = oai.responses.create(
        model="balanced",
        input="Weather in Paris as JSON",
        text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == answer
    assert not [item for item in response.output if item.type == "function_call"]
    [call] = gateway.calls()
    gateway.provider.assert_structured_output_request(call, schema)


class Weather(BaseModel):
    city: str
    temperature_c: float


def test_parse_with_a_pydantic_model(oai, gateway):
    answer = {"city": "Paris", "temperature_c": 22}
    gateway.mock.push(gateway.provider.structured_output_reply(answer))
    response = oai.responses.parse(model="balanced", input="Weather in Paris", text_format=Weather)
    assert response.output_parsed == Weather(city="Paris", temperature_c=22)


def test_stream_text(oai, gateway):
    gateway.mock.push({"text": "Hello big wide world"})
    with oai.responses.stream(model="balanced", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Hello big wide world"
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "Hello big wide world"
    assert final.usage.output_tokens > 0
    [call] = gateway.calls()
    assert call.stream


def test_stream_function_call(oai, gateway):
    gateway.mock.push({"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}})
    with oai.responses.stream(model="balanced", input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Paris"}
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}


def test_the_wire_validates_against_the_sdks_own_types(oai, gateway):
    """The SDK builds its objects without validating them; validating the raw JSON catches a
    field with the wrong type or a missing required one."""
    gateway.mock.push({"text": "Hi.", "thinking": "Say hi."}, {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}})
    raw = oai.responses.with_raw_response.create(model="balanced", input="hi")
    Response.model_validate(json.loads(raw.text))

    adapter = TypeAdapter(ResponseStreamEvent)
    with oai.responses.with_streaming_response.create(
        model="balanced", input="Weather?", tools=[WEATHER_TOOL], stream=True
    ) as raw_stream:
        frames = [line[len("data: "):] for line in raw_stream.iter_lines() if line.startswith("data: ")]
    assert frames
    for frame in frames:
        adapter.validate_python(json.loads(frame))


def test_hosted_tools_are_refused_by_name(oai, gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.responses.create(model="balanced", input="hi", tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}])
    assert "file_search" in caught.value.message
    assert gateway.calls() == []
