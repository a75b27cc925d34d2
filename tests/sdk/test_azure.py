"""An Azure-backed model through the OpenAI SDK: the gateway speaks Azure's dialect upstream."""

from __future__ import annotations

from _helpers import bounded, expected_reply

AZURE_PATH = "/openai/deployments/mock-deployment/chat/completions?api-version=2024-10-21"


def test_azure_chat(gatehouse, client, marker):
    prompt = f"azure {marker}"
    resp = client.chat.completions.create(model="azure-mock", messages=[{"role": "user", "content": prompt}])
    assert resp.choices[0].message.content == expected_reply(prompt)
    assert resp.usage is not None

    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["method"] == "POST"
    assert up["path"] == AZURE_PATH
    assert up["headers"].get("api-key") == gatehouse.azure_key
    auth = up["headers"].get("authorization", "")
    assert gatehouse.master_key not in auth
    for name, value in up["headers"].items():
        assert gatehouse.master_key not in str(value), f"master key forwarded upstream in {name}"


def test_azure_stream(gatehouse, client, marker):
    prompt = f"azure stream {marker}"
    stream = client.chat.completions.create(
        model="azure-mock",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(bounded(stream))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    assert chunks[-1].usage is not None
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["path"] == AZURE_PATH
    assert up["headers"].get("api-key") == gatehouse.azure_key


AZURE_EMBEDDINGS_PATH = "/openai/deployments/mock-deployment/embeddings?api-version=2024-10-21"


def test_azure_embeddings(gatehouse, client, marker):
    # The SDK asks for base64 by default; the gateway relays Azure's answer as it is.
    resp = client.embeddings.create(model="azure-mock", input=["azure a", marker])
    assert resp.object == "list"
    assert [d.index for d in resp.data] == [0, 1]
    assert resp.model == "mock-deployment"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0

    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["method"] == "POST"
    assert up["path"] == AZURE_EMBEDDINGS_PATH
    assert up["headers"].get("api-key") == gatehouse.azure_key
    assert "authorization" not in up["headers"]
    assert up["body"]["model"] == "mock-deployment"
    assert up["body"]["input"] == ["azure a", marker]

    # The same input through an OpenAI-compatible deployment of the same mock gives the same
    # vectors: the Azure answer arrived whole and decoded.
    same = client.embeddings.create(model="embed-mock", input=["azure a", marker])
    assert [d.embedding for d in resp.data] == [d.embedding for d in same.data]
    assert all(len(d.embedding) == 8 for d in resp.data)
