"""The Anthropic SDK on the gateway's /anthropic pass-through (base_url <gateway>/anthropic, the
gateway key as its api_key), for every upstream provider: with an Anthropic deployment the SDK's
own requests reach the Anthropic API unchanged but for the key; without one, the SDK raises the
gateway's GW-12 saying what to add."""

from __future__ import annotations

import anthropic
import pytest

from conftest import SDK_TIMEOUT
from harness import MASTER_KEY, UPSTREAM_KEY


@pytest.fixture
def passthrough(gateway):
    with anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key=MASTER_KEY, max_retries=0,
                             timeout=SDK_TIMEOUT) as client:
        yield client


def anthropic_model(gateway) -> str:
    return gateway.model_id("cheap")


def test_messages_and_streams_pass_through_with_the_deployments_key(gateway, passthrough):
    if gateway.provider.name != "anthropic":
        with pytest.raises(anthropic.NotFoundError) as refused:
            passthrough.messages.create(model="claude-haiku-4-5", max_tokens=16,
                                        messages=[{"role": "user", "content": "Say: WORKS"}])
        assert "GW-12" in str(refused.value.body), refused.value.body
        assert not gateway.mock.received(), "nothing reached an upstream"
        return
    model = anthropic_model(gateway)
    answer = passthrough.messages.create(model=model, max_tokens=16,
                                         messages=[{"role": "user", "content": "Say: WORKS"}])
    assert answer.model == model
    assert answer.usage.input_tokens > 0
    with passthrough.messages.stream(model=model, max_tokens=16,
                                     messages=[{"role": "user", "content": "Say: WORKS"}]) as stream:
        streamed = stream.get_final_message()
    assert streamed.usage.output_tokens > 0
    received = gateway.mock.received()
    assert [r["path"] for r in received] == ["/v1/messages", "/v1/messages"]
    for r in received:
        headers = {k.lower(): v for k, v in r["headers"].items()}
        assert headers["x-api-key"] == UPSTREAM_KEY
        assert MASTER_KEY not in str(headers)
        assert r["body"]["model"] == model
