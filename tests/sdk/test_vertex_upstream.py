"""Vertex AI-backed models through the OpenAI SDK: gatehouse signs a service-account JWT,
exchanges it at the (mock) token endpoint once, and sends `generateContent` /
`streamGenerateContent` (Gemini) or `rawPredict` / `streamRawPredict` (Claude, an Anthropic
Messages body without `model` and with Vertex's `anthropic_version`) to the
project/location URL with the bearer token."""

from __future__ import annotations

import json

from _helpers import bounded, expected_reply
from conftest import VERTEX_TEST_SA

VERTEX_PATH = "/v1/projects/sdk-proj/locations/us-central1/publishers/google/models/gemini-vertex-upstream"


def test_chat(gatehouse, client, marker):
    prompt = f"hi vertex {marker}"
    resp = client.chat.completions.create(model="vertex-mock", messages=[{"role": "user", "content": prompt}])
    assert resp.choices[0].message.content == expected_reply(prompt)
    assert resp.model == "gemini-vertex-upstream"  # Vertex AI's modelVersion
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["path"] == f"{VERTEX_PATH}:generateContent"
    assert up["headers"]["authorization"].startswith("Bearer ya29.mock-")
    assert all(c.get("role") for c in up["body"]["contents"])


def test_stream_with_usage(gatehouse, client, marker):
    prompt = f"stream vertex {marker}"
    stream = client.chat.completions.create(
        model="vertex-mock",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(bounded(stream))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    assert chunks[-1].usage is not None
    assert {c.model for c in chunks} == {"gemini-vertex-upstream"}
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["path"] == f"{VERTEX_PATH}:streamGenerateContent?alt=sse"


def test_token_reused_and_never_logged(gatehouse, client, marker):
    for i in range(2):
        client.chat.completions.create(model="vertex-mock", messages=[{"role": "user", "content": f"{i} {marker}"}])
    reqs = gatehouse.upstream_requests()
    tokens = {r["headers"]["authorization"] for r in reqs if r["path"].startswith(VERTEX_PATH)}
    assert len(tokens) == 1, "one cached token for every Vertex call"
    assert sum(1 for r in reqs if r["path"] == "/token") <= 1, "the token is fetched once"
    log = gatehouse.log_path.read_text(errors="replace")
    token = next(iter(tokens)).removeprefix("Bearer ")
    assert token not in log, "access token in the trace log"
    key_line = json.loads(VERTEX_TEST_SA.read_text())["private_key"].splitlines()[5]
    assert key_line not in log, "private key in the trace log"


# --- Claude on Vertex AI (`vertex_ai/claude-…`): Anthropic's publisher endpoints ---

CLAUDE_PATH = "/v1/projects/sdk-proj/locations/us-east5/publishers/anthropic/models/claude-vertex-upstream@20250514"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def _assert_vertex_claude(up, method):
    assert up["path"] == f"{CLAUDE_PATH}:{method}"
    assert up["headers"]["authorization"].startswith("Bearer ya29.mock-")
    assert up["body"]["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in up["body"]


def test_claude_on_vertex_chat(gatehouse, client, marker):
    prompt = f"hi claude on vertex {marker}"
    resp = client.chat.completions.create(model="claude-vertex-mock", messages=[{"role": "user", "content": prompt}])
    assert resp.choices[0].message.content == expected_reply(prompt)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "claude-vertex-upstream@20250514"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    (up,) = gatehouse.upstream_requests_with(marker)
    _assert_vertex_claude(up, "rawPredict")


def test_claude_on_vertex_stream(gatehouse, client, marker):
    prompt = f"stream claude on vertex {marker}"
    stream = client.chat.completions.create(
        model="claude-vertex-mock",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(bounded(stream))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    (up,) = gatehouse.upstream_requests_with(marker)
    _assert_vertex_claude(up, "streamRawPredict")
    assert up["body"]["stream"] is True


def test_claude_on_vertex_tools(gatehouse, client, marker):
    question = {"role": "user", "content": f"weather? {marker}"}
    resp = client.chat.completions.create(model="claude-vertex-mock", messages=[question], tools=[WEATHER_TOOL])
    assert resp.choices[0].finish_reason == "tool_calls"
    (call,) = resp.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}
    resp = client.chat.completions.create(
        model="claude-vertex-mock",
        messages=[
            question,
            resp.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert resp.choices[0].message.content == "Hello from mock: tool said sunny"
    for up in gatehouse.upstream_requests_with(marker):
        _assert_vertex_claude(up, "rawPredict")
