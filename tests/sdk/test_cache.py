"""The response cache through both SDKs, for every upstream provider: a streamed answer
served from the cache parses exactly like the live stream it was stored from, and makes no
upstream call. The gateway's cache is `mode: default_off`; these requests opt in."""

from __future__ import annotations

import time
import uuid

USE_CACHE = {"cache": {"use-cache": True}}


def until_hit(call, attempts: int = 60):
    """Repeats `call` (which returns (cache header, value)) until the gateway answers from
    the cache: the stream before it is stored in the background once it completed."""
    for _ in range(attempts):
        status, value = call()
        if status == "hit":
            return value
        time.sleep(0.05)
    raise AssertionError("the answer was never served from the cache")


def test_a_cached_openai_stream_parses_like_the_live_one(oai, gateway):
    word = f"CACHED{uuid.uuid4().hex[:8]}"
    messages = [{"role": "user", "content": f"Say: {word} now"}]

    def stream():
        raw = oai.chat.completions.with_raw_response.create(
            model="cheap", messages=messages, stream=True,
            stream_options={"include_usage": True}, extra_body=USE_CACHE,
        )
        chunks = list(raw.parse())
        return raw.headers.get("x-switchyard-cache"), chunks

    status, live = stream()
    assert status == "miss"
    calls = len(gateway.calls())
    cached = until_hit(stream)
    assert len(gateway.calls()) == calls, "a hit makes no upstream call"

    def summary(chunks):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        [usage] = [c.usage for c in chunks if c.usage is not None]
        return (text, finish, usage.prompt_tokens, usage.completion_tokens,
                {c.id for c in chunks}, {c.model for c in chunks}, {c.object for c in chunks})

    assert summary(cached) == summary(live)
    assert summary(live)[0] == f"{word} now"

    # The same request without streaming is answered from the same entry.
    raw = oai.chat.completions.with_raw_response.create(
        model="cheap", messages=messages, extra_body=USE_CACHE)
    assert raw.headers.get("x-switchyard-cache") == "hit"
    assert raw.parse().choices[0].message.content == f"{word} now"


def test_a_cached_anthropic_stream_parses_like_the_live_one(ant, gateway):
    word = f"CACHED{uuid.uuid4().hex[:8]}"
    messages = [{"role": "user", "content": f"Say: {word}"}]

    def stream():
        with ant.messages.stream(model="cheap", max_tokens=64, messages=messages,
                                 extra_body=USE_CACHE) as s:
            events = [e.type for e in s]
            final = s.get_final_message()
            status = s.response.headers.get("x-switchyard-cache")
        return status, (events, final)

    status, (live_events, live) = stream()
    assert status == "miss"
    calls = len(gateway.calls())
    cached_events, cached = until_hit(stream)
    assert len(gateway.calls()) == calls, "a hit makes no upstream call"

    assert cached.model_dump() == live.model_dump()
    assert cached.content[0].text == word
    # The same event kinds in the same order (a live stream may split the text in more
    # deltas; the cache sends each block's content in one).
    dedupe = lambda events: [e for i, e in enumerate(events) if i == 0 or events[i - 1] != e]
    assert dedupe(cached_events) == dedupe(live_events)
