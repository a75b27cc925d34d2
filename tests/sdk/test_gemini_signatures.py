"""Gemini 3 through the OpenAI SDK: a multi-turn tool conversation works because the
thought signature of each function call rides in the tool call id, which the SDK (like
every OpenAI client) sends back. The mock refuses, like Gemini 3, a replayed call without
its signature."""

from __future__ import annotations

import openai
import pytest

from _helpers import bounded

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    }
]


def _tool_turn(client, question, message, calls):
    return client.chat.completions.create(
        model="gemini-3-mock",
        messages=[
            question,
            message,
            *({"role": "tool", "tool_call_id": c.id, "content": "sunny"} for c in calls),
        ],
        tools=TOOLS,
    )


def test_signatures_survive_tool_turns(gatehouse, client, marker):
    question = {"role": "user", "content": f"weather? {marker}"}
    first = client.chat.completions.create(model="gemini-3-mock", messages=[question], tools=TOOLS)
    (call,) = first.choices[0].message.tool_calls
    assert "__thought__" in call.id
    answer = _tool_turn(client, question, first.choices[0].message.model_dump(exclude_none=True), [call])
    assert answer.choices[0].message.content == "Hello from mock: tool said sunny"
    replayed = gatehouse.upstream_requests_with(marker)[-1]["body"]["contents"][1]["parts"][0]
    assert replayed["thoughtSignature"]

    # The next question gets a fresh id, not the first turn's again.
    again = client.chat.completions.create(
        model="gemini-3-mock",
        messages=[
            question,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            {"role": "assistant", "content": answer.choices[0].message.content},
            {"role": "user", "content": "and tomorrow?"},
        ],
        tools=TOOLS,
    )
    assert again.choices[0].message.tool_calls[0].id != call.id


def test_streamed_ids_carry_signatures(client, marker):
    question = {"role": "user", "content": f"weather? {marker}"}
    stream = client.chat.completions.create(model="gemini-3-mock", messages=[question], tools=TOOLS, stream=True)
    deltas = [tc for c in bounded(stream) if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    (delta,) = deltas
    assert "__thought__" in delta.id
    message = {"role": "assistant", "tool_calls": [{"id": delta.id, "type": "function", "function": delta.function.model_dump()}]}
    answer = _tool_turn(client, question, message, [delta])
    assert answer.choices[0].message.content == "Hello from mock: tool said sunny"


def test_without_the_signature_gemini_3_refuses(client, marker):
    question = {"role": "user", "content": f"weather? {marker}"}
    first = client.chat.completions.create(model="gemini-3-mock", messages=[question], tools=TOOLS)
    message = first.choices[0].message.model_dump(exclude_none=True)
    cut = message["tool_calls"][0]["id"].split("__thought__")[0]
    message["tool_calls"][0]["id"] = cut
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="gemini-3-mock",
            messages=[question, message, {"role": "tool", "tool_call_id": cut, "content": "sunny"}],
            tools=TOOLS,
        )
    assert "thought_signature" in str(e.value)
