"""`client.embeddings.create` with the official OpenAI SDK against the gateway, in front of an
OpenAI-compatible embeddings server and Bedrock's Titan Text Embeddings v2. The SDK asks for
base64 by default and decodes it; `encoding_format="float"` gets plain floats: both must give
the same vectors. The mock derives each vector from its input (component 0 is the input's length
in characters), so the order of `data` is checked, not assumed."""

from __future__ import annotations

import math
import struct

import openai
import pytest

from conftest import SDK_TIMEOUT, yaml_scalar
from harness import (
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    BedrockProvider,
    MASTER_KEY,
    UPSTREAM_KEY,
    Process,
    binary,
    child_env,
)

TEXTS = ["def add(a, b): return a + b", "retrieval", "class Gateway: pass  # routes requests"]


def f32(values: list[float]) -> list[float]:
    """Values rounded to float32: JSON floats are written at f32 precision (the shortest form
    that reads back as the same f32), base64 carries the f32 bits themselves."""
    return list(struct.unpack(f"{len(values)}f", struct.pack(f"{len(values)}f", *values)))


def mock_tokens(text: str) -> int:
    """The mock's count: a token per started 4 bytes."""
    return max(1, math.ceil(len(text.encode()) / 4))


@pytest.fixture(scope="module")
def embed_gateway(mock, tmp_path_factory):
    home = tmp_path_factory.mktemp("gateway-embeddings")
    config = home / "config.yaml"
    bedrock = BedrockProvider().litellm_params("amazon.titan-embed-text-v2:0", mock.url)
    entries = {
        "embed-openai": {"model": "openai/text-embedding-3-small", "api_key": UPSTREAM_KEY,
                         "api_base": mock.url + "/v1"},
        "embed-titan": bedrock,
    }
    lines = ["model_list:"]
    for name, params in entries.items():
        lines.append(f"  - model_name: {name}")
        lines.append("    litellm_params:")
        lines.extend(f"      {k}: {yaml_scalar(v)}" for k, v in params.items())
        lines += ["    model_info:", "      mode: embedding"]
    lines += ["general_settings:", f"  master_key: {yaml_scalar(MASTER_KEY)}",
              "router_settings:", "  num_retries: 0", ""]
    config.write_text("\n".join(lines))
    argv = [str(binary("SWITCHYARD_BIN", "switchyard")), "--config", str(config),
            "--host", "127.0.0.1", "--port", "0"]
    process = Process("switchyard-embeddings", argv, "Switchyard", home, child_env(home))
    yield process.url
    process.stop()


@pytest.fixture
def client(embed_gateway, mock):
    # A reset (every test) forgets AWS identities: register the Bedrock one again.
    mock.aws("identity", {"access_key_id": AWS_ACCESS_KEY_ID,
                          "secret_access_key": AWS_SECRET_ACCESS_KEY,
                          "session_token": AWS_SESSION_TOKEN})
    with openai.OpenAI(base_url=embed_gateway + "/v1", api_key=MASTER_KEY, max_retries=0,
                       timeout=SDK_TIMEOUT) as c:
        yield c


@pytest.mark.parametrize("model,size", [("embed-openai", 1536), ("embed-titan", 1024)])
def test_both_encodings_give_the_same_vectors_in_input_order(client, mock, model, size):
    default = client.embeddings.create(model=model, input=TEXTS)  # base64 on the wire
    floats = client.embeddings.create(model=model, input=TEXTS, encoding_format="float")
    for answer in (default, floats):
        assert [d.index for d in answer.data] == [0, 1, 2]
        assert [d.embedding[0] for d in answer.data] == [float(len(t)) for t in TEXTS]
        assert all(len(d.embedding) == size for d in answer.data)
        assert all(-1.0 <= v < 1.0 for d in answer.data for v in d.embedding[1:])
        assert answer.usage.prompt_tokens == sum(mock_tokens(t) for t in TEXTS)
        assert answer.usage.total_tokens == answer.usage.prompt_tokens
    assert [d.embedding for d in default.data] == [f32(d.embedding) for d in floats.data]
    # Distinct inputs, distinct vectors.
    assert default.data[0].embedding[1:] != default.data[1].embedding[1:]


def test_dimensions_reach_the_model_and_a_size_it_cannot_make_is_refused(client, mock):
    answer = client.embeddings.create(model="embed-titan", input="one chunk", dimensions=256)
    assert len(answer.data[0].embedding) == 256
    assert answer.model == "amazon.titan-embed-text-v2:0"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="embed-titan", input="one chunk", dimensions=300)
    assert e.value.body["diagnosis"]["id"] == "EMB-03"


def test_a_chat_request_to_an_embedding_model_says_where_to_send_it(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="embed-openai",
                                       messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["diagnosis"]["id"] == "EMB-02"
    assert "/v1/embeddings" in e.value.message
