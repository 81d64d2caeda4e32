"""The cost of each answer through both SDKs' raw responses: LiteLLM's
`x-litellm-response-cost` header, an exact decimal computed from the usage the SDK reports and
the prices written in the config (conftest.PRICES on the alias `priced`), for every upstream
provider. A streamed answer's cost is known only after its headers, so it has none."""

from __future__ import annotations

from decimal import Decimal

from conftest import PRICED_ALIAS, PRICES

HI = [{"role": "user", "content": "Hi"}]
HEADER = "x-litellm-response-cost"
# What the upstream reports: input, output, cache reads and writes.
USAGE = {
    "input_tokens": 1234,
    "output_tokens": 567,
    "cache_read_input_tokens": 8901,
    "cache_creation_input_tokens": 234,
}
PRICE = {key: Decimal(value) for key, value in PRICES.items()}


def shown(cost: Decimal) -> str:
    """A cost as the header writes it: a plain decimal, no exponent, no trailing zeros."""
    return format(cost.normalize(), "f")


def test_openai_sdk_reads_the_cost_of_a_json_answer(oai, gateway):
    gateway.mock.push({"text": "priced answer", "usage": USAGE})
    raw = oai.chat.completions.with_raw_response.create(model=PRICED_ALIAS, messages=HI)
    completion = raw.parse()
    usage = completion.usage
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    # prompt_tokens counts every input token, cached or not (OpenAI's convention).
    expected = (
        (usage.prompt_tokens - cached) * PRICE["input_cost_per_token"]
        + cached * PRICE["cache_read_input_token_cost"]
        + usage.completion_tokens * PRICE["output_cost_per_token"]
    )
    assert cached == USAGE["cache_read_input_tokens"]
    assert usage.completion_tokens == USAGE["output_tokens"]
    assert raw.headers.get(HEADER) == shown(expected)
    # (1234 + 234 written) × 1.1 + 8901 × 0.13 + 567 × 4.3 millionths of a dollar, exactly
    # (in floats the same sum is 5210.030000000001).
    assert Decimal(raw.headers[HEADER]) == Decimal("0.00521003")


def test_anthropic_sdk_reads_the_cost_of_a_json_answer(ant, gateway):
    gateway.mock.push({"text": "priced answer", "usage": USAGE})
    raw = ant.messages.with_raw_response.create(model=PRICED_ALIAS, max_tokens=64, messages=HI)
    usage = raw.parse().usage
    expected = (
        usage.input_tokens * PRICE["input_cost_per_token"]
        + (usage.cache_read_input_tokens or 0) * PRICE["cache_read_input_token_cost"]
        + (usage.cache_creation_input_tokens or 0) * PRICE["cache_creation_input_token_cost"]
        + usage.output_tokens * PRICE["output_cost_per_token"]
    )
    assert usage.output_tokens == USAGE["output_tokens"]
    assert raw.headers.get(HEADER) == shown(expected)
    assert Decimal(raw.headers[HEADER]) == Decimal("0.00521003")


def test_a_streamed_answer_carries_no_cost_header(oai, ant, gateway):
    gateway.mock.push({"text": "priced answer", "usage": USAGE},
                      {"text": "priced answer", "usage": USAGE})
    with oai.chat.completions.with_streaming_response.create(
        model=PRICED_ALIAS, messages=HI, stream=True
    ) as raw:
        assert HEADER not in raw.headers
        for _ in raw.iter_lines():
            pass
    with ant.messages.with_streaming_response.create(
        model=PRICED_ALIAS, max_tokens=64, messages=HI, stream=True
    ) as raw:
        assert HEADER not in raw.headers
        for _ in raw.iter_lines():
            pass
