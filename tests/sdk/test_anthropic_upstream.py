"""A Claude model (an `anthropic/` deployment) through the OpenAI SDK: gatehouse translates
OpenAI Chat Completions to Anthropic Messages upstream, and the answers back."""

from __future__ import annotations

import json

from _helpers import bounded, expected_reply

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a place.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_claude_chat(gatehouse, client, marker):
    prompt = f"claude {marker}"
    resp = client.chat.completions.create(
        model="claude-mock",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
        max_tokens=64,
    )
    assert resp.object == "chat.completion"
    assert resp.model == "claude-upstream"  # the model Anthropic reports
    assert resp.choices[0].message.content == expected_reply(prompt)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0

    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["path"] == "/v1/messages"
    assert up["headers"].get("x-api-key") == gatehouse.anthropic_key
    assert up["headers"].get("anthropic-version") == "2023-06-01"
    assert "authorization" not in up["headers"]
    assert up["body"]["model"] == "claude-upstream"
    assert up["body"]["max_tokens"] == 64


def test_claude_stream_with_usage(gatehouse, client, marker):
    prompt = f"claude stream {marker}"
    stream = client.chat.completions.create(
        model="claude-mock",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(bounded(stream))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert {c.model for c in chunks} == {"claude-upstream"}
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]


def test_claude_tool_call_round_trip(client, marker):
    messages = [{"role": "user", "content": f"weather please {marker}"}]
    resp = client.chat.completions.create(model="claude-mock", messages=messages, tools=[WEATHER_TOOL])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    resp = client.chat.completions.create(model="claude-mock", messages=messages, tools=[WEATHER_TOOL])
    assert resp.choices[0].message.content == "Hello from mock: tool said sunny"


def test_claude_streamed_tool_call(client, marker):
    stream = client.chat.completions.create(
        model="claude-mock",
        messages=[{"role": "user", "content": f"weather please {marker}"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in bounded(stream):
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"name": "", "arguments": ""})
            if tc.function and tc.function.name:
                slot["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                slot["arguments"] += tc.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "mock"}
