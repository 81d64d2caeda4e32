"""`client.models.list()` and `client.models.retrieve()` with both official SDKs: the OpenAI SDK
gets OpenAI's model list, the Anthropic SDK (which sends `anthropic-version`) Anthropic's. Both
list the tiers and the visible `model_group_alias` names, never a `hidden` one — which is still
callable and retrievable."""

from __future__ import annotations

import anthropic
import openai
import pytest

from conftest import HIDDEN_RAW_NAMES, PRICED_ALIAS, RAW_CLAUDE_NAMES

TIERS = ["cheap", "balanced", "frontier"]
VISIBLE_RAW = [n for n in RAW_CLAUDE_NAMES if n not in HIDDEN_RAW_NAMES]
HIDDEN = sorted(HIDDEN_RAW_NAMES)[0]


def test_openai_sdk_lists_the_tiers_and_visible_aliases(oai):
    ids = [m.id for m in oai.models.list()]
    assert ids[:3] == TIERS
    assert set(VISIBLE_RAW) <= set(ids) and PRICED_ALIAS in ids
    assert HIDDEN not in ids
    assert oai.models.retrieve("balanced").id == "balanced"
    # Hidden from the list, not from callers.
    assert oai.models.retrieve(HIDDEN).id == HIDDEN


def test_anthropic_sdk_lists_in_its_own_shape(ant):
    page = ant.models.list()
    ids = [m.id for m in page.data]
    assert ids[:3] == TIERS
    assert set(VISIBLE_RAW) <= set(ids)
    assert HIDDEN not in ids
    assert all(m.type == "model" and m.display_name == m.id for m in page.data)
    assert page.has_more is False
    assert (page.first_id, page.last_id) == (ids[0], ids[-1])
    one = ant.models.retrieve(HIDDEN)
    assert (one.id, one.type) == (HIDDEN, "model")


def test_an_unknown_model_is_an_error_in_each_sdk_s_shape(oai, ant):
    with pytest.raises(openai.BadRequestError) as e:
        oai.models.retrieve("no-such-model")
    assert "GW-02" in str(e.value.body)
    with pytest.raises(anthropic.BadRequestError) as e:
        ant.models.retrieve("no-such-model")
    assert "no-such-model" in str(e.value)


def test_a_hidden_alias_reaches_its_tier(ant, gateway):
    reply = ant.messages.create(model=HIDDEN, max_tokens=16,
                                messages=[{"role": "user", "content": "Say: WORKS"}])
    assert reply.content
    assert {c.model for c in gateway.calls()} == {gateway.model_id(RAW_CLAUDE_NAMES[HIDDEN])}
