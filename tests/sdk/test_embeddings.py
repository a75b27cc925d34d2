"""Embeddings through the OpenAI SDK."""

from __future__ import annotations

import math


def _check(resp, n):
    assert resp.object == "list"
    assert len(resp.data) == n
    for i, item in enumerate(resp.data):
        assert item.index == i
        assert len(item.embedding) == 8
        assert all(isinstance(x, float) and math.isfinite(x) for x in item.embedding)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0


def test_embeddings_default_base64(gatehouse, client, marker):
    # The SDK asks for base64 by default and decodes it; that must survive the gateway.
    resp = client.embeddings.create(model="embed-mock", input=["a", "b", marker])
    _check(resp, 3)

    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["path"] == "/v1/embeddings"
    assert up["body"]["model"] == "mock-embed"
    assert up["headers"].get("authorization") == f"Bearer {gatehouse.embed_key}"


def test_embeddings_two_inputs(client):
    _check(client.embeddings.create(model="embed-mock", input=["a", "b"]), 2)


def test_embeddings_float(gatehouse, client, marker):
    resp = client.embeddings.create(model="embed-mock", input=["a", marker], encoding_format="float")
    _check(resp, 2)
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["body"]["encoding_format"] == "float"


def test_embeddings_single_string(client):
    _check(client.embeddings.create(model="embed-mock", input="just one", encoding_format="float"), 1)


def test_base64_and_float_agree(client):
    """The SDK's base64 decoding yields the same vectors as the float format."""
    b64 = client.embeddings.create(model="embed-mock", input=["a", "b"])
    flt = client.embeddings.create(model="embed-mock", input=["a", "b"], encoding_format="float")
    for x, y in zip(b64.data, flt.data, strict=True):
        assert len(x.embedding) == len(y.embedding) == 8
        assert all(abs(p - q) < 1e-6 for p, q in zip(x.embedding, y.embedding, strict=True))
