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


STRICT_WEATHER_TOOL = {"type": "function", "function": dict(WEATHER_TOOL["function"], strict=True)}


def test_claude_streamed_thinking_replays_through_the_sdk_stream_helper(gatehouse, client, marker):
    """The OpenAI SDK's stream helper accumulates `thinking_blocks` by index; the message it
    builds goes back as it is, and Anthropic (the mock, which checks signatures) accepts it."""
    messages = [{"role": "user", "content": f"weather please {marker}"}]
    with client.chat.completions.stream(
        model="claude-mock",
        messages=messages,
        tools=[STRICT_WEATHER_TOOL],
        reasoning_effort="low",
        extra_body={"mock": {"redacted_thinking": True}},
    ) as stream:
        for _ in bounded(stream):
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    message = choice.message.model_dump(exclude_none=True)
    assert message["reasoning_content"] == "Mock thinking."
    blocks = message["thinking_blocks"]
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking"]
    assert blocks[0]["thinking"] == "Mock thinking." and blocks[0]["signature"].startswith("sig_mock_")
    (call,) = choice.message.tool_calls
    assert json.loads(call.function.arguments) == {"location": "mock"}

    messages += [message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    resp = client.chat.completions.create(
        model="claude-mock", messages=messages, tools=[WEATHER_TOOL], reasoning_effort="low"
    )
    assert resp.choices[0].message.content == "Hello from mock: tool said sunny"
    replay = gatehouse.upstream_requests_with(marker)[-1]
    assistant = replay["body"]["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "Mock thinking.", "signature": blocks[0]["signature"]}
    assert assistant[1] == {"type": "redacted_thinking", "data": blocks[1]["data"]}


def test_claude_response_format_parses(client, marker):
    from pydantic import BaseModel

    class Forecast(BaseModel):
        location: str
        days: int

    resp = client.chat.completions.parse(
        model="claude-mock",
        messages=[{"role": "user", "content": f"forecast {marker}"}],
        response_format=Forecast,
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.parsed == Forecast(location="mock", days=1)
    assert not choice.message.tool_calls


def test_claude_prompt_cache_tokens(client, marker):
    messages = [
        {"role": "system", "content": [
            {"type": "text", "text": f"cached {marker} policy", "cache_control": {"type": "ephemeral"}}
        ]},
        {"role": "user", "content": "hi"},
    ]
    first = client.chat.completions.create(model="claude-mock", messages=messages)
    assert first.usage.model_extra["cache_creation_input_tokens"] == 3
    second = client.chat.completions.create(model="claude-mock", messages=messages)
    assert second.usage.prompt_tokens_details.cached_tokens == 3
    assert second.usage.model_extra["cache_read_input_tokens"] == 3
    assert second.usage.prompt_tokens == 4
