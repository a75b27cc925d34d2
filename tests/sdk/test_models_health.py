"""`/v1/models` and the health endpoints."""

from __future__ import annotations

import openai
import pytest

from _helpers import assert_error_envelope

CONFIGURED = [
    "azure-mock",
    "bedrock-cohere-mock",
    "bedrock-mock",
    "bedrock-titan-mock",
    "claude-mock",
    "claude-vertex-mock",
    "embed-mock",
    "gemini-3-mock",
    "gemini-mock",
    "gpt-mock",
    "vertex-mock",
]


def test_models_list_is_exactly_the_configured_names(client):
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert sorted(ids) == CONFIGURED, ids
    assert all(m.object == "model" for m in models)


def test_models_list_needs_a_key(gatehouse):
    bad = gatehouse.client(api_key="sk-wrong")
    try:
        with pytest.raises(openai.AuthenticationError) as ei:
            bad.models.list()
        assert ei.value.status_code == 401
        assert_error_envelope(ei.value.body, 401)
    finally:
        bad.close()


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/readiness"])
def test_health_without_a_key(http, path):
    r = http.get(path)
    assert r.status_code == 200, r.text
    assert r.content
