"""Batches through both official SDKs and against every upstream provider: OpenAI's files and
batches (`client.files.*`, `client.batches.*`) and Anthropic's message batches
(`client.messages.batches.*`), run by the gateway — or, when every request goes to one
Anthropic account, forwarded to the (emulated) Anthropic Batches API — results read back in
each SDK's own types."""

from __future__ import annotations

import io
import json
import time

import anthropic
import openai
import pytest

from harness import wait_until

BATCH_TIMEOUT = 60.0


def wait_for(fetch, done, timeout: float = BATCH_TIMEOUT):
    last = fetch()
    deadline = time.monotonic() + timeout
    while not done(last):
        assert time.monotonic() < deadline, f"never finished: {last}"
        time.sleep(0.2)
        last = fetch()
    return last


def chat_lines(n: int, alias: str = "cheap") -> bytes:
    lines = [
        {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": alias, "max_tokens": 16,
                  "messages": [{"role": "user", "content": f"Say batch {i}"}]}}
        for i in range(n)
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def test_openai_sdk_runs_a_batch_from_a_file(oai: openai.OpenAI, gateway):
    content = chat_lines(3)
    uploaded = oai.files.create(file=("nightly.jsonl", io.BytesIO(content)), purpose="batch")
    assert uploaded.id.startswith("file-")
    assert (uploaded.bytes, uploaded.purpose, uploaded.filename) == (len(content), "batch", "nightly.jsonl")
    assert oai.files.retrieve(uploaded.id).id == uploaded.id
    assert oai.files.content(uploaded.id).read() == content

    batch = oai.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                               completion_window="24h", metadata={"run": "nightly"})
    assert batch.id.startswith("batch_")
    assert batch.metadata == {"run": "nightly"}
    done = wait_for(lambda: oai.batches.retrieve(batch.id),
                    lambda b: b.status in ("completed", "failed", "cancelled"))
    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 3, 0)
    assert done.error_file_id is None

    results = [json.loads(line) for line in oai.files.content(done.output_file_id).text.splitlines()]
    assert sorted(r["custom_id"] for r in results) == ["req-0", "req-1", "req-2"]
    for r in results:
        assert r["response"]["status_code"] == 200
        completion = openai.types.chat.ChatCompletion.model_validate(r["response"]["body"])
        assert completion.choices[0].message.content
    # Each request reached the upstream once, with the alias's model.
    calls = gateway.calls()
    assert len(calls) == 3
    assert {c.model for c in calls} == {gateway.model_id("cheap")}

    listed = [b.id for b in oai.batches.list(limit=100)]
    assert batch.id in listed
    with pytest.raises(openai.BadRequestError) as ended:
        oai.batches.cancel(batch.id)
    assert "has already ended" in ended.value.message
    assert oai.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve(uploaded.id)


def test_openai_sdk_cancels_a_batch(oai: openai.OpenAI, gateway):
    # Slow answers, more requests than the gateway runs at once (8): some are still queued.
    gateway.mock.set_default({"text": "slow", "delay_ms": 1500})
    uploaded = oai.files.create(file=("many.jsonl", io.BytesIO(chat_lines(12))), purpose="batch")
    batch = oai.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                               completion_window="24h")
    assert wait_until(lambda: gateway.mock.calls() >= 1, timeout=20)
    cancelling = oai.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_for(lambda: oai.batches.retrieve(batch.id), lambda b: b.status == "cancelled")
    counts = done.request_counts
    assert counts.total == 12 and counts.failed >= 1, counts
    assert counts.completed + counts.failed == 12
    errors = [json.loads(line) for line in oai.files.content(done.error_file_id).text.splitlines()]
    assert len(errors) == counts.failed
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    # Only the requests that were running reached the upstream.
    assert gateway.mock.calls() == counts.completed


def message_requests(n: int, alias: str = "cheap") -> list[dict]:
    return [{"custom_id": f"msg-{i}",
             "params": {"model": alias, "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"Say message {i}"}]}}
            for i in range(n)]


def listed_then_deleted(ant: anthropic.Anthropic, batch_id: str) -> None:
    """An ended batch: listed, not cancellable, deletable, then gone."""
    assert batch_id in [b.id for b in ant.messages.batches.list(limit=100)]
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.batches.cancel(batch_id)
    assert ant.messages.batches.delete(batch_id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.batches.retrieve(batch_id)


def test_anthropic_sdk_runs_a_message_batch(ant: anthropic.Anthropic, gateway):
    requests = message_requests(2) + [{"custom_id": "refused", "params": {
        "model": "bad-key", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}}]
    batch = ant.messages.batches.create(requests=requests)
    assert batch.id.startswith("msgbatch_")
    assert batch.type == "message_batch"
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3
    done = wait_for(lambda: ant.messages.batches.retrieve(batch.id),
                    lambda b: b.processing_status == "ended")
    assert (done.request_counts.succeeded, done.request_counts.errored) == (2, 1)
    assert done.ended_at is not None and done.results_url

    results = {r.custom_id: r.result for r in ant.messages.batches.results(batch.id)}
    assert set(results) == {"msg-0", "msg-1", "refused"}
    for key in ("msg-0", "msg-1"):
        assert results[key].type == "succeeded"
        assert results[key].message.content[0].text
    assert results["refused"].type == "errored"
    assert results["refused"].error.error.type in ("authentication_error", "permission_error")
    listed_then_deleted(ant, batch.id)


def test_anthropic_sdk_cancels_a_message_batch(ant: anthropic.Anthropic, gateway):
    gateway.mock.set_default({"text": "slow", "delay_ms": 1500})
    batch = ant.messages.batches.create(requests=message_requests(12))
    assert wait_until(lambda: gateway.mock.calls() >= 1, timeout=20)
    cancelling = ant.messages.batches.cancel(batch.id)
    assert cancelling.processing_status in ("canceling", "ended")
    assert cancelling.cancel_initiated_at is not None
    done = wait_for(lambda: ant.messages.batches.retrieve(batch.id),
                    lambda b: b.processing_status == "ended")
    counts = done.request_counts
    assert counts.canceled >= 1 and counts.succeeded + counts.canceled == 12, counts
    kinds = [r.result.type for r in ant.messages.batches.results(batch.id)]
    assert kinds.count("canceled") == counts.canceled
    assert kinds.count("succeeded") == counts.succeeded


def test_anthropic_sdk_message_batch_is_forwarded_to_anthropic(ant: anthropic.Anthropic, gateway):
    if gateway.provider.name != "anthropic":
        pytest.skip("only a batch whose requests all go to the Anthropic API is forwarded")
    gateway.mock.batch_delay(1500)
    priced = [dict(r, custom_id=f"priced-{i}") for i, r in enumerate(message_requests(1, "priced"))]
    batch = ant.messages.batches.create(requests=message_requests(2) + priced)
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3
    assert ant.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    # One upstream batch with the deployment's model; no request was run by the gateway.
    created = [r for r in gateway.mock.received()
               if r["method"] == "POST" and r["path"] == "/v1/messages/batches"]
    assert len(created) == 1
    sent = created[0]["body"]["requests"]
    assert [r["custom_id"] for r in sent] == ["msg-0", "msg-1", "priced-0"]
    assert {r["params"]["model"] for r in sent} == {gateway.model_id("cheap")}
    assert gateway.calls() == []

    done = wait_for(lambda: ant.messages.batches.retrieve(batch.id),
                    lambda b: b.processing_status == "ended")
    assert (done.request_counts.succeeded, done.request_counts.processing) == (3, 0)
    assert done.results_url and done.results_url.startswith(gateway.url)
    results = {r.custom_id: r.result for r in ant.messages.batches.results(batch.id)}
    assert set(results) == {"msg-0", "msg-1", "priced-0"}
    for result in results.values():
        assert result.type == "succeeded"
        assert result.message.content[0].text
    listed_then_deleted(ant, batch.id)
