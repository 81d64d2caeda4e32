"""Every error class raises the exception each official SDK maps it to, with a message that
names the cause, for every upstream provider. The SDKs run with max_retries=0, so a retryable
error costs one request."""

from __future__ import annotations

import anthropic
import openai
import pytest

from harness import MASTER_KEY

WRONG_GATEWAY_KEY = "sk-wrong-gateway-key-123456"
HI = [{"role": "user", "content": "Hi"}]
SIX_WORDS = "one two three four five six"

# class -> (openai exception, anthropic exception, the status the SDK must see (None: any
# 5xx), words the message must contain, case-insensitively: at least one of each group).
# The classes are the harness providers' `error(cls)` names.
UPSTREAM_ERRORS = {
    "permission": (
        openai.PermissionDeniedError, anthropic.PermissionDeniedError, 403, [["permission"]]),
    "not_found": (
        openai.NotFoundError, anthropic.NotFoundError, 404,
        [["does not know", "not found", "unknown model", "does not exist"]]),
    "bad_request": (
        openai.BadRequestError, anthropic.BadRequestError, 400,
        [["input should be a valid string"]]),
    "context_window": (
        openai.BadRequestError, anthropic.BadRequestError, 400,
        [["209303", "too long", "context"]]),
    "rate_limit": (
        openai.RateLimitError, anthropic.RateLimitError, 429,
        [["rate limit", "rate_limit", "rate-limit", "throttl"]]),
    "overloaded": (openai.InternalServerError, anthropic.OverloadedError, 529, [["overload"]]),
    "server": (
        openai.InternalServerError, anthropic.InternalServerError, None,
        [["500", "internal server error", "api_error"]]),
}
# "overloaded" from an upstream without a status of its own for it (Bedrock's 503
# ServiceUnavailableException): an unavailable upstream, any 5xx.
UNAVAILABLE = (openai.InternalServerError, anthropic.InternalServerError, None, [["unavailable"]])
# The Anthropic `error.type` of each Anthropic SDK exception above (for errors after the 200).
ANTHROPIC_TYPES = {
    anthropic.OverloadedError: "overloaded_error",
    anthropic.InternalServerError: "api_error",
}


def expected(cls: str, provider) -> tuple:
    """UPSTREAM_ERRORS[cls] as it applies to the provider."""
    if cls == "overloaded" and not provider.has_overloaded_status:
        return UNAVAILABLE
    return UPSTREAM_ERRORS[cls]


def upstream_error(gateway, cls: str) -> dict:
    """The provider's reply spec for the class, with a retry-after where the upstream sends one."""
    spec = gateway.provider.error(cls)
    return {**spec, "retry_after": 7} if gateway.provider.sends_retry_after else spec


def assert_names(message: str, groups: list[list[str]]) -> None:
    lowered = message.lower()
    for group in groups:
        assert any(word.lower() in lowered for word in group), f"none of {group} in: {message}"


def user_message(exc) -> str:
    """The message the gateway wrote, from the error body (not the SDK's `Error code: N`
    prefix): OpenAI's `{"error": {"message"}}` or Anthropic's `{"type": "error", "error":
    {"message"}}`."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]  # Anthropic's shape; the openai SDK already unwrapped it
    assert isinstance(body, dict) and isinstance(body.get("message"), str), \
        f"no error message in {exc.body!r}"
    return body["message"]


def assert_no_secrets(message: str, gateway) -> None:
    for secret in [*gateway.provider.bad_key_secrets, MASTER_KEY]:
        assert secret not in message, "keys are never echoed"


def assert_status(exc, status: int | None) -> None:
    if status is None:
        assert exc.status_code >= 500
    else:
        assert exc.status_code == status


# ---------------------------------------------------------------------------- gateway's own


def test_openai_wrong_gateway_key(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=WRONG_GATEWAY_KEY, max_retries=0)
    with client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="cheap", messages=HI)
    message = user_message(caught.value)
    assert_names(message, [["authorization", "x-api-key"]])
    assert WRONG_GATEWAY_KEY not in message, "a key is never echoed"
    assert gateway.mock.calls() == 0


def test_anthropic_wrong_gateway_key(gateway):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=WRONG_GATEWAY_KEY, max_retries=0)
    with client, pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model="cheap", max_tokens=16, messages=HI)
    message = user_message(caught.value)
    assert_names(message, [["authorization", "x-api-key"]])
    assert WRONG_GATEWAY_KEY not in message
    assert caught.value.body["type"] == "error", "Anthropic's error shape"
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert gateway.mock.calls() == 0


def test_openai_unknown_model(oai, gateway):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="no-such-model", messages=HI)
    message = user_message(caught.value)
    assert "no-such-model" in message
    assert "cheap" in message, "names the aliases that exist"
    assert gateway.mock.calls() == 0


def test_anthropic_unknown_model(ant, gateway):
    with pytest.raises(anthropic.BadRequestError) as caught:
        ant.messages.create(model="no-such-model", max_tokens=16, messages=HI)
    message = user_message(caught.value)
    assert "no-such-model" in message and "cheap" in message
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert gateway.mock.calls() == 0


# ---------------------------------------------------------------------------- upstream's


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_upstream_rejects_the_key(oai, gateway, stream):
    with pytest.raises(openai.AuthenticationError) as caught:
        oai.chat.completions.create(model="bad-key", messages=HI, stream=stream)
    message = user_message(caught.value)
    assert_names(message, [[w] for w in gateway.provider.bad_key_words])
    assert_no_secrets(message, gateway)
    assert gateway.mock.calls() == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_upstream_rejects_the_key(ant, gateway, stream):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        ant.messages.create(model="bad-key", max_tokens=16, messages=HI, stream=stream)
    message = user_message(caught.value)
    assert_names(message, [[w] for w in gateway.provider.bad_key_words])
    assert_no_secrets(message, gateway)
    assert gateway.mock.calls() == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("cls", list(UPSTREAM_ERRORS))
def test_openai_upstream_error(oai, gateway, cls, stream):
    oai_exc, _, status, words = expected(cls, gateway.provider)
    # As the default reply, so a retry (should one happen) meets the same error.
    gateway.mock.set_default(upstream_error(gateway, cls))
    with pytest.raises(oai_exc) as caught:
        response = oai.chat.completions.create(model="balanced", messages=HI, stream=stream)
        for _ in response if stream else []:
            pass
    exc = caught.value
    assert gateway.mock.calls() >= 1, "the error came from the upstream"
    assert_status(exc, status)
    message = user_message(exc)
    assert_names(message, words)
    assert gateway.model_id("balanced") in message or "balanced" in message, "names the deployment"
    if cls != "bad_request":  # a malformed request is the client's to fix; the rest need a remedy
        assert "Fix:" in message
    if cls == "rate_limit" and gateway.provider.sends_retry_after:
        assert exc.response.headers.get("retry-after") == "7", "the upstream's retry-after is kept"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("cls", list(UPSTREAM_ERRORS))
def test_anthropic_upstream_error(ant, gateway, cls, stream):
    _, ant_exc, status, words = expected(cls, gateway.provider)
    gateway.mock.set_default(upstream_error(gateway, cls))
    with pytest.raises(ant_exc) as caught:
        if stream:
            with ant.messages.stream(model="balanced", max_tokens=16, messages=HI) as s:
                s.get_final_message()
        else:
            ant.messages.create(model="balanced", max_tokens=16, messages=HI)
    exc = caught.value
    assert gateway.mock.calls() >= 1, "the error came from the upstream"
    assert_status(exc, status)
    message = user_message(exc)
    assert_names(message, words)
    assert gateway.model_id("balanced") in message or "balanced" in message, "names the deployment"
    if cls != "bad_request":
        assert "Fix:" in message
    assert exc.body["type"] == "error"
    if cls == "rate_limit" and gateway.provider.sends_retry_after:
        assert exc.response.headers.get("retry-after") == "7", "the upstream's retry-after is kept"


# ---------------------------------------------------------------------------- after the 200


def test_openai_error_mid_stream_is_raised_not_truncated(oai, gateway):
    # The upstream's "overloaded" after four events of a 200 stream.
    gateway.mock.push({"text": SIX_WORDS,
                       "stream_error_after": gateway.provider.stream_error_after(4)})
    stream = oai.chat.completions.create(model="cheap", messages=HI, stream=True)
    text = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
    assert "".join(text).startswith("one"), "what arrived before the error reached the client"
    assert_names(str(caught.value), expected("overloaded", gateway.provider)[3])


def test_openai_dropped_stream_is_raised_not_truncated(oai, gateway):
    gateway.mock.push({"text": SIX_WORDS, "stream_drop_after": 4})
    stream = oai.chat.completions.create(model="cheap", messages=HI, stream=True)
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert not isinstance(caught.value, openai.APIConnectionError), \
        "an error chunk, not a cut connection"


def test_anthropic_error_mid_stream_is_raised_not_truncated(ant, gateway):
    gateway.mock.push({"text": SIX_WORDS,
                       "stream_error_after": gateway.provider.stream_error_after(4)})
    text = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with ant.messages.stream(model="cheap", max_tokens=64, messages=HI) as stream:
            for piece in stream.text_stream:
                text.append(piece)
    assert "".join(text).startswith("one")
    _, ant_exc, _, words = expected("overloaded", gateway.provider)
    assert caught.value.body["error"]["type"] == ANTHROPIC_TYPES[ant_exc]
    assert_names(user_message(caught.value), words)


def test_anthropic_dropped_stream_is_raised_not_truncated(ant, gateway):
    gateway.mock.push({"text": SIX_WORDS, "stream_drop_after": 4})
    with pytest.raises(anthropic.APIStatusError) as caught:
        with ant.messages.stream(model="cheap", max_tokens=64, messages=HI) as stream:
            stream.get_final_message()
    assert caught.value.body["type"] == "error", "an error event, not a cut connection"
