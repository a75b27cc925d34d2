"""Gemini- and Bedrock-backed models through the OpenAI SDK: gatehouse translates to
`generateContent` (key in a header, never the URL) and to Bedrock Converse (SigV4-signed,
AWS event-stream decoded), and the answers back."""

from __future__ import annotations

import json

import pytest

from _helpers import bounded, expected_reply

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}

MODELS = ["gemini-mock", "bedrock-mock"]
# The model an answer names: Gemini's `modelVersion` (the mock echoes the upstream model);
# Converse names none, so the deployment's upstream model id.
REPORTED = {"gemini-mock": "gemini-upstream", "bedrock-mock": "anthropic.claude-upstream-v1:0"}


@pytest.mark.parametrize("model", MODELS)
def test_chat(gatehouse, client, marker, model):
    prompt = f"hi {marker}"
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    assert resp.choices[0].message.content == expected_reply(prompt)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert resp.model == REPORTED[model]
    (up,) = gatehouse.upstream_requests_with(marker)
    if model == "gemini-mock":
        assert up["path"] == "/v1beta/models/gemini-upstream:generateContent"
        assert up["headers"].get("x-goog-api-key") == gatehouse.gemini_key
        assert "key=" not in up["path"]
    else:
        assert up["path"].endswith("/converse")
        assert up["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert gatehouse.aws_secret not in json.dumps(up["headers"])


@pytest.mark.parametrize("model", MODELS)
def test_stream_with_usage(client, marker, model):
    prompt = f"stream {marker}"
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(bounded(stream))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    assert chunks[-1].usage is not None
    assert {c.model for c in chunks} == {REPORTED[model]}


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_round_trip(client, marker, model):
    messages = [{"role": "user", "content": f"weather please {marker}"}]
    resp = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    resp = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    assert resp.choices[0].message.content.startswith("Hello from mock: tool said")
    assert "sunny" in resp.choices[0].message.content


def test_gemini_embeddings(client):
    resp = client.embeddings.create(model="gemini-mock", input=["a", "b"])
    assert len(resp.data) == 2
    assert resp.model == "gemini-upstream"  # Gemini names no model: the upstream one
    assert all(len(d.embedding) > 0 for d in resp.data)


@pytest.mark.parametrize("model", ["bedrock-titan-mock", "bedrock-cohere-mock"])
def test_bedrock_embeddings(gatehouse, client, model):
    # The SDK asks for base64 by default and decodes it: both encodings go through here.
    inputs = ["alpha", "beta gamma", "delta"]
    resp = client.embeddings.create(model=model, input=inputs)
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert all(len(d.embedding) == 8 for d in resp.data)
    floats = client.embeddings.create(model=model, input=inputs, encoding_format="float")
    for a, b in zip(resp.data, floats.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, rel=1e-6)
    assert resp.usage.prompt_tokens > 0
    invokes = [r for r in gatehouse.upstream_requests() if r["path"].endswith("/invoke")]
    assert invokes and all(r["headers"]["authorization"].startswith("AWS4-HMAC-SHA256") for r in invokes)


STRICT_WEATHER_TOOL = {
    "type": "function",
    "function": {**WEATHER_TOOL["function"], "strict": True},
}
STRICT_WEATHER_TOOL["function"]["parameters"] = {
    **WEATHER_TOOL["function"]["parameters"],
    "additionalProperties": False,
}


def test_bedrock_streamed_thinking_accumulates_and_replays(gatehouse, client, marker):
    """Claude on Bedrock answering with two signed reasoning blocks and a redacted one, then a
    tool call, streamed through the SDK's `chat.completions.stream()` helper. Its
    accumulator merges list deltas by `index` and raises "Expected list delta entry to have
    an `index` key" on an entry without one: every `thinking_blocks` entry carries its
    block's index, so the final message holds three whole blocks. Sent back with the tool
    result, the mock (which checks every signature and redacted block as Bedrock does)
    accepts the turn."""
    messages = [{"role": "user", "content": f"weather please {marker}"}]
    with client.chat.completions.stream(
        model="bedrock-mock",
        messages=messages,
        tools=[STRICT_WEATHER_TOOL],
        reasoning_effort="low",
        extra_body={"mock": {"thinking_blocks": 2, "redacted_thinking": True, "chunks": 2}},
    ) as stream:
        for _ in bounded(stream):
            pass
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    dumped = message.model_dump()
    blocks = dumped["thinking_blocks"]
    assert [b["type"] for b in blocks] == ["thinking", "thinking", "redacted_thinking"], blocks
    assert [b["index"] for b in blocks] == [0, 1, 2]
    assert blocks[0]["thinking"] == "Mock thinking."
    assert blocks[1]["thinking"] == "Mock thinking, part 2."
    for block in blocks[:2]:
        assert block["signature"].startswith("sig_mock_") and block["signature"].count("sig_mock_") == 1
    assert blocks[2]["data"]
    assert dumped["reasoning_content"] == "Mock thinking.Mock thinking, part 2."
    (call,) = message.tool_calls
    assert call.function.parsed_arguments == {"location": "mock"}

    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}
        ],
        "reasoning_content": dumped["reasoning_content"],
        "thinking_blocks": blocks,
    }
    messages += [assistant, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    resp = client.chat.completions.create(
        model="bedrock-mock", messages=messages, tools=[STRICT_WEATHER_TOOL], reasoning_effort="low"
    )
    assert resp.choices[0].message.content == "Hello from mock: tool said sunny"
    sent = gatehouse.upstream_requests_with(marker)[-1]["body"]
    reasoning = [b["reasoningContent"] for b in sent["messages"][1]["content"] if "reasoningContent" in b]
    assert [r.get("reasoningText", {}).get("text") for r in reasoning] == [
        "Mock thinking.",
        "Mock thinking, part 2.",
        None,
    ]
    assert reasoning[2]["redactedContent"] == blocks[2]["data"]
