"""Tool calls through the OpenAI SDK: non-streamed, a round trip, and streamed."""

from __future__ import annotations

import json

from _helpers import bounded

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a place.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string", "description": "City name"}},
                "required": ["location"],
            },
        },
    }
]


def test_tool_call(gatehouse, client, marker):
    resp = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": f"weather? {marker}"}],
        tools=TOOLS,
        tool_choice="auto",
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "mock"}

    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["body"]["tools"] == TOOLS
    assert up["body"]["tool_choice"] == "auto"


def test_tool_round_trip(client, marker):
    messages = [{"role": "user", "content": f"weather? {marker}"}]
    first = client.chat.completions.create(model="gpt-mock", messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]

    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})})
    second = client.chat.completions.create(model="gpt-mock", messages=messages, tools=TOOLS)

    choice = second.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    # The mock acknowledges the tool result it was sent.
    assert choice.message.content == 'Hello from mock: tool said {"temp_c": 21}'


def test_streamed_tool_call(client):
    stream = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "weather, streamed"}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in bounded(stream):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            acc = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            if tc.id:
                acc["id"] = tc.id
            if tc.function and tc.function.name:
                acc["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                acc["arguments"] += tc.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason

    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"location": "mock"}
