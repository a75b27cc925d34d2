"""The official `anthropic` SDK against gatehouse's `/v1/messages` (how Claude Code and other
Anthropic clients use the gateway): natively passed through for an `anthropic/` model,
translated to and from OpenAI chat completions for an OpenAI-compatible one."""

from __future__ import annotations

import anthropic
import pytest

from _helpers import bounded, expected_reply

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a place.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}

MODELS = ["claude-mock", "gpt-mock"]
# The model each upstream reports (the mock echoes the upstream model it was asked for).
REPORTED = {"claude-mock": "claude-upstream", "gpt-mock": "mock-gpt"}


@pytest.fixture
def claude(gatehouse) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gatehouse.base_url, api_key=gatehouse.master_key, max_retries=0, timeout=20.0
    )


@pytest.mark.parametrize("model", MODELS)
def test_messages_create(gatehouse, claude, marker, model):
    prompt = f"messages {marker}"
    msg = claude.messages.create(
        model=model,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": prompt}],
    )
    assert msg.type == "message" and msg.role == "assistant"
    # The model the provider reported, passed through natively or translated (as LiteLLM).
    assert msg.model == REPORTED[model]
    texts = [b.text for b in msg.content if b.type == "text"]
    assert texts == [expected_reply(prompt)]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0

    (up,) = gatehouse.upstream_requests_with(marker)
    if model == "claude-mock":
        assert up["path"] == "/v1/messages"
        assert up["headers"].get("x-api-key") == gatehouse.anthropic_key
        assert up["body"]["model"] == "claude-upstream"
        assert up["body"]["system"] == "Be brief."
    else:
        assert up["path"] == "/v1/chat/completions"
        assert up["headers"].get("authorization") == f"Bearer {gatehouse.openai_key}"
        assert up["body"]["model"] == "mock-gpt"
        assert up["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    for name, value in up["headers"].items():
        assert gatehouse.master_key not in str(value), f"master key forwarded upstream in {name}"


def test_anthropic_beta_header_reaches_a_native_upstream(gatehouse, claude, marker):
    claude.messages.create(
        model="claude-mock",
        max_tokens=16,
        messages=[{"role": "user", "content": f"beta {marker}"}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["headers"].get("anthropic-beta") == "prompt-caching-2024-07-31"


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream(claude, marker, model):
    prompt = f"stream {marker}"
    with claude.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": prompt}]
    ) as stream:
        text = "".join(bounded(stream.text_stream))
        final = stream.get_final_message()
    assert text == expected_reply(prompt)
    assert final.model == REPORTED[model]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_tool_use_round_trip(claude, marker, model):
    messages = [{"role": "user", "content": f"weather please {marker}"}]
    msg = claude.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER_TOOL])
    assert msg.stop_reason == "tool_use"
    (call,) = [b for b in msg.content if b.type == "tool_use"]
    assert call.name == "get_weather"
    assert call.input == {"location": "mock"}

    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    msg = claude.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER_TOOL])
    assert [b.text for b in msg.content if b.type == "text"] == ["Hello from mock: tool said sunny"]


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use(claude, marker, model):
    with claude.messages.stream(
        model=model,
        max_tokens=64,
        messages=[{"role": "user", "content": f"weather please {marker}"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        for _ in bounded(stream):
            pass
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (call,) = [b for b in final.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"location": "mock"}


@pytest.mark.parametrize("model", MODELS)
def test_count_tokens(claude, model):
    n = claude.messages.count_tokens(
        model=model, messages=[{"role": "user", "content": "how many tokens is this message"}]
    )
    assert n.input_tokens > 0


def test_errors_are_in_anthropics_format(gatehouse, claude):
    bad = anthropic.Anthropic(base_url=gatehouse.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as ei:
        bad.messages.create(model="gpt-mock", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["type"] == "error"
    assert ei.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.BadRequestError) as ei:
        claude.messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["error"]["type"] == "invalid_request_error"
    assert "no-such-model" in ei.value.body["error"]["message"]

    r = gatehouse.http.post(
        f"{gatehouse.base_url}/v1/messages",
        headers={"x-api-key": gatehouse.master_key, "content-type": "application/json"},
        content=b'{"model":"gpt-mock","messages":[{"role":"user","content":"x"}]}',
    )
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]


def test_streamed_thinking_and_tool_use_round_trip(gatehouse, claude, marker):
    """Claude Code's loop with extended thinking on a native Anthropic deployment, streamed:
    the SDK assembles thinking (with its signature), redacted thinking and the tool call, and
    sends them back with the tool result. The mock checks the signatures as Anthropic does."""
    thinking = {"type": "enabled", "budget_tokens": 1024}
    messages = [{"role": "user", "content": f"weather please {marker}"}]
    with claude.messages.stream(
        model="claude-mock",
        max_tokens=2048,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=messages,
        extra_body={"mock": {"redacted_thinking": True}},
    ) as stream:
        kinds = [event.type for event in bounded(stream)]
        first = stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds, kinds
    assert [b.type for b in first.content] == ["thinking", "redacted_thinking", "tool_use"]
    assert first.content[0].thinking == "Mock thinking."
    assert first.content[0].signature.startswith("sig_mock_")
    assert first.content[1].data.startswith("redacted_mock_")
    assert first.stop_reason == "tool_use"
    call = first.content[2]

    assistant = [b.model_dump(exclude_none=True) for b in first.content]
    messages += [
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    with claude.messages.stream(
        model="claude-mock", max_tokens=2048, thinking=thinking, tools=[WEATHER_TOOL], messages=messages
    ) as stream:
        for _ in bounded(stream):
            pass
        second = stream.get_final_message()
    assert [b.text for b in second.content if b.type == "text"] == ["Hello from mock: tool said sunny"]

    replay = gatehouse.upstream_requests_with(marker)[-1]
    assert replay["body"]["messages"][1]["content"] == assistant


def test_prompt_cache_usage_through_messages(claude, marker):
    system = [{"type": "text", "text": f"shared policy {marker} of six words", "cache_control": {"type": "ephemeral"}}]
    first = claude.messages.create(
        model="claude-mock", max_tokens=32, system=system, messages=[{"role": "user", "content": "one"}]
    )
    assert first.usage.cache_creation_input_tokens == 6
    assert first.usage.cache_read_input_tokens == 0
    second = claude.messages.create(
        model="claude-mock", max_tokens=32, system=system, messages=[{"role": "user", "content": "two"}]
    )
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 6
    assert second.usage.input_tokens == 1
