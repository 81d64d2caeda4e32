"""Virtual keys' limits through both official SDKs: a key over its budget raises the SDK's
BadRequestError (LiteLLM's `budget_exceeded`), a key over its `rpm_limit` raises
RateLimitError with `retry-after` and `x-ratelimit-*` headers, and a deleted key raises
AuthenticationError. A refused request never reaches the upstream. Keys are created with the
master key through `POST /key/generate`, a new one per test, so the tests share nothing; the
shared gateways keep them in their state directory."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from conftest import PRICED_ALIAS, SDK_TIMEOUT
from harness import MASTER_KEY

HI = [{"role": "user", "content": "Hi"}]
COST_HEADER = "x-litellm-response-cost"
# A budget the first request fits in and the second does not: admission reserves the most a
# request can cost (its input estimate plus max_tokens of output at the alias' prices, about
# $0.0003 here), and the first answer spends more than the budget.
BUDGET = 0.001
MAX_TOKENS = 64
# 1000 × 1.1 + 50 × 4.3 millionths of a dollar at conftest.PRICES: $0.001315.
USAGE = {"input_tokens": 1000, "output_tokens": 50}


def admin(gateway, path: str, body: dict) -> dict:
    """A management call with the master key; its JSON answer."""
    request = urllib.request.Request(gateway.url + path, data=json.dumps(body).encode(),
                                     method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("authorization", f"Bearer {MASTER_KEY}")
    try:
        with urllib.request.urlopen(request, timeout=SDK_TIMEOUT) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{path}: {err.code} {err.read().decode()}") from None


def new_key(gateway, **limits) -> str:
    return admin(gateway, "/key/generate", limits)["key"]


def openai_client(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0,
                         timeout=SDK_TIMEOUT)


def anthropic_client(gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0,
                               timeout=SDK_TIMEOUT)


def budget_message(cost: str) -> str:
    return f"Budget has been exceeded! Current cost: {cost}, Max budget: {BUDGET}."


def refused_within_the_minute(gateway, send, exc_cls):
    """The exception of the request a one-a-minute key is refused, after one was served.
    Minutes are fixed windows: if a new one began just after the served request, the next is
    served too, and the one after that cannot be. Each refusal must leave the upstream alone."""
    for _ in range(2):
        calls = gateway.mock.calls()
        try:
            send()
        except exc_cls as exc:
            assert gateway.mock.calls() == calls, "a refused request never reaches the upstream"
            return exc
    pytest.fail("a key with rpm_limit 1 served three requests in a row")


def assert_rate_limit_headers(exc) -> None:
    headers = exc.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60, "the seconds until the next minute"
    assert headers["x-ratelimit-limit-requests"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"


# ---------------------------------------------------------------------------- budget


def test_openai_sdk_raises_bad_request_for_an_exceeded_key_budget(gateway):
    key = new_key(gateway, key_alias="sdk-budget", max_budget=BUDGET)
    gateway.mock.set_default({"text": "priced answer", "usage": USAGE})
    with openai_client(gateway, key) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=PRICED_ALIAS, messages=HI, max_tokens=MAX_TOKENS)
        cost = raw.headers[COST_HEADER]
        assert cost == "0.001315"
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=PRICED_ALIAS, messages=HI, max_tokens=MAX_TOKENS)
    exc = caught.value
    assert exc.status_code == 400
    # LiteLLM's fields, which scripts written for it match on.
    assert exc.type == "budget_exceeded"
    assert exc.code == "400"
    assert exc.param is None
    assert exc.body["message"].startswith(budget_message(cost)), exc.body["message"]
    assert exc.body["diagnosis"]["id"] == "BUD-01"
    assert "sdk-budget" in exc.body["diagnosis"]["cause"], "names the key by its alias"
    assert key not in str(exc.body), "a key is never echoed"
    assert gateway.mock.calls() == 1, "the refused request never reached the upstream"


def test_anthropic_sdk_raises_bad_request_for_an_exceeded_key_budget(gateway):
    key = new_key(gateway, max_budget=BUDGET)
    gateway.mock.set_default({"text": "priced answer", "usage": USAGE})
    with anthropic_client(gateway, key) as client:
        raw = client.messages.with_raw_response.create(
            model=PRICED_ALIAS, max_tokens=MAX_TOKENS, messages=HI)
        cost = raw.headers[COST_HEADER]
        assert cost == "0.001315"
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(model=PRICED_ALIAS, max_tokens=MAX_TOKENS, messages=HI)
    exc = caught.value
    assert exc.status_code == 400
    assert exc.body["type"] == "error", "Anthropic's error shape"
    assert exc.body["error"]["type"] == "invalid_request_error"
    assert exc.body["error"]["message"].startswith(budget_message(cost)), exc.body["error"]
    assert gateway.mock.calls() == 1, "the refused request never reached the upstream"


# ---------------------------------------------------------------------------- rate limit


def test_openai_sdk_raises_rate_limit_error_past_a_key_rpm_limit(gateway):
    key = new_key(gateway, rpm_limit=1)
    with openai_client(gateway, key) as client:
        served = client.chat.completions.with_raw_response.create(model="cheap", messages=HI)
        assert served.headers["x-ratelimit-limit-requests"] == "1"
        assert served.headers["x-ratelimit-remaining-requests"] == "0"
        exc = refused_within_the_minute(
            gateway, lambda: client.chat.completions.create(model="cheap", messages=HI),
            openai.RateLimitError)
    assert exc.status_code == 429
    assert exc.type == "rate_limit_error"
    assert exc.code == "rate_limited"
    assert "rpm_limit" in exc.body["message"], exc.body["message"]
    assert exc.body["diagnosis"]["id"] == "LIM-01"
    assert_rate_limit_headers(exc)


def test_anthropic_sdk_raises_rate_limit_error_past_a_key_rpm_limit(gateway):
    key = new_key(gateway, rpm_limit=1)
    with anthropic_client(gateway, key) as client:
        served = client.messages.with_raw_response.create(model="cheap", max_tokens=16,
                                                          messages=HI)
        assert served.headers["x-ratelimit-remaining-requests"] == "0"
        exc = refused_within_the_minute(
            gateway, lambda: client.messages.create(model="cheap", max_tokens=16, messages=HI),
            anthropic.RateLimitError)
    assert exc.status_code == 429
    assert exc.body["type"] == "error", "Anthropic's error shape"
    assert exc.body["error"]["type"] == "rate_limit_error"
    assert "rpm_limit" in exc.body["error"]["message"], exc.body["error"]
    assert_rate_limit_headers(exc)


# ---------------------------------------------------------------------------- deleted key


def test_openai_sdk_raises_authentication_error_for_a_deleted_key(gateway):
    key = new_key(gateway)
    with openai_client(gateway, key) as client:
        client.chat.completions.create(model="cheap", messages=HI)
        assert admin(gateway, "/key/delete", {"keys": [key]})["deleted_keys"] == [key]
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="cheap", messages=HI)
    exc = caught.value
    assert exc.status_code == 401
    assert exc.type == "auth_error"
    assert exc.code == "401"
    assert key not in exc.body["message"], "a key is never echoed"
    assert gateway.mock.calls() == 1, "only the request before the deletion was served"


def test_anthropic_sdk_raises_authentication_error_for_a_deleted_key(gateway):
    key = new_key(gateway)
    with anthropic_client(gateway, key) as client:
        client.messages.create(model="cheap", max_tokens=16, messages=HI)
        admin(gateway, "/key/delete", {"keys": [key]})
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client.messages.create(model="cheap", max_tokens=16, messages=HI)
    exc = caught.value
    assert exc.status_code == 401
    assert exc.body["type"] == "error"
    assert exc.body["error"]["type"] == "authentication_error"
    assert key not in exc.body["error"]["message"], "a key is never echoed"
    assert gateway.mock.calls() == 1, "only the request before the deletion was served"
