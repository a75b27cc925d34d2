"""Chat completions through the OpenAI SDK: plain, pass-through, control fields, streaming."""

from __future__ import annotations

import socket
import threading
import time

from _helpers import assert_no_secret, bounded, expected_reply


def test_plain_chat_completion(gatehouse, client, marker):
    prompt = f"say hi {marker}"
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-mock",
        messages=[
            {"role": "system", "content": "You are a test."},
            {"role": "user", "content": "first message"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": prompt},
        ],
    )
    assert raw.status_code == 200
    resp = raw.parse()

    assert resp.object == "chat.completion"
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected_reply(prompt)
    assert choice.finish_reason == "stop"
    # The upstream's own model name comes back (as LiteLLM relays it).
    assert resp.model == "mock-gpt"

    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens

    headers = raw.headers
    for name in ("x-litellm-call-id", "x-litellm-model-id", "x-litellm-response-duration-ms"):
        assert headers.get(name), f"response header {name} missing: {dict(headers)}"
    assert float(headers["x-litellm-response-duration-ms"]) >= 0
    for value in headers.values():
        assert_no_secret(gatehouse, value, "a response header")

    seen = gatehouse.upstream_requests_with(marker)
    assert len(seen) == 1, seen
    up = seen[0]
    assert up["method"] == "POST"
    assert up["path"] == "/v1/chat/completions"
    assert up["body"]["model"] == "mock-gpt"
    assert up["body"]["messages"][-1] == {"role": "user", "content": prompt}
    assert up["headers"].get("authorization") == f"Bearer {gatehouse.openai_key}"
    for name, value in up["headers"].items():
        assert gatehouse.master_key not in str(value), f"master key forwarded upstream in {name}"


def test_call_ids_are_unique(client):
    ids = set()
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-mock", messages=[{"role": "user", "content": "id?"}]
        )
        ids.add(raw.headers["x-litellm-call-id"])
    assert len(ids) == 3


def test_unknown_fields_pass_through(gatehouse, client, marker):
    resp = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": marker}],
        temperature=0.25,
        user="end-user-1",
        extra_body={"custom_field": {"a": 1}, "metadata_x": [1, "two", None]},
    )
    assert resp.choices[0].message.content == expected_reply(marker)
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["body"]["custom_field"] == {"a": 1}
    assert up["body"]["metadata_x"] == [1, "two", None]
    assert up["body"]["temperature"] == 0.25
    assert up["body"]["user"] == "end-user-1"


class _Decoy:
    """A listener that counts connections: the place a malicious request tries to send us."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_request_cannot_choose_upstream_or_key(gatehouse, client, marker):
    decoy = _Decoy()
    try:
        decoy_base = f"http://127.0.0.1:{decoy.port}/v1"
        resp = client.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": marker}],
            extra_body={
                "api_base": decoy_base,
                "base_url": decoy_base,
                "api_key": "sk-attacker-chosen",
                "custom_field": {"a": 1},
            },
        )
        # Still answered by the configured upstream (the mock), with the configured key.
        assert resp.choices[0].message.content == expected_reply(marker)
        (up,) = gatehouse.upstream_requests_with(marker)
        for f in ("api_base", "base_url", "api_key"):
            assert f not in up["body"], f"{f} was forwarded upstream"
        assert up["body"]["custom_field"] == {"a": 1}
        assert up["headers"].get("authorization") == f"Bearer {gatehouse.openai_key}"
        assert "sk-attacker-chosen" not in str(up)

        # The same on a streamed request.
        stream = client.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": marker + "-stream"}],
            stream=True,
            extra_body={"api_base": decoy_base, "base_url": decoy_base, "api_key": "sk-attacker-chosen"},
        )
        text = "".join(c.choices[0].delta.content or "" for c in bounded(stream) if c.choices)
        assert text == expected_reply(marker + "-stream")

        time.sleep(0.3)
        assert decoy.connections == 0, "the gateway connected to a URL chosen by the request"
    finally:
        decoy.close()


def test_streaming_with_usage(gatehouse, client, marker):
    prompt = f"stream please {marker}"
    stream = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(bounded(stream))
    assert chunks, "no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    ids = {c.id for c in chunks}
    assert len(ids) == 1, f"chunks of one stream should share an id: {ids}"

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(prompt)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2, "expected the text in several chunks"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]

    last = chunks[-1]
    assert last.usage is not None, "the last chunk should carry usage"
    assert last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])

    # The stream ended cleanly: the response is closed and nothing more comes.
    assert stream.response.is_closed
    (up,) = gatehouse.upstream_requests_with(marker)
    assert up["body"]["stream"] is True
    assert up["body"]["stream_options"] == {"include_usage": True}
    assert up["body"]["model"] == "mock-gpt"


def test_stream_raw_headers_and_content_type(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-mock", messages=[{"role": "user", "content": "raw stream"}], stream=True
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers.get("x-litellm-call-id")
    assert raw.headers.get("x-litellm-model-id")
    stream = raw.parse()
    text = "".join(c.choices[0].delta.content or "" for c in bounded(stream) if c.choices)
    assert text == expected_reply("raw stream")


def test_time_to_first_chunk_is_not_buffered(client, marker):
    prompt = f"slow {marker}"
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        extra_body={"mock": {"chunks": 5, "chunk_delay_ms": 400}},
    )
    first_content = None
    text = ""
    for chunk in bounded(stream, max_seconds=20):
        if chunk.choices and chunk.choices[0].delta.content:
            if first_content is None:
                first_content = time.monotonic() - started
            text += chunk.choices[0].delta.content
    total = time.monotonic() - started

    assert text == expected_reply(prompt)
    assert first_content is not None
    # 5 chunks, 400 ms apart: the stream takes well over 1.5 s, the first chunk must not wait.
    assert total >= 1.5, f"the mock's delays did not apply (stream took {total:.2f} s)"
    assert first_content < 1.0, f"first chunk after {first_content:.2f} s of {total:.2f} s: buffered?"
    assert total - first_content >= 1.0, f"first chunk {first_content:.2f} s, end {total:.2f} s: buffered?"


def test_chat_path_without_v1(gatehouse, marker):
    """LiteLLM also serves `/chat/completions` (clients configured with a base URL without /v1)."""
    import openai

    c = openai.OpenAI(base_url=gatehouse.base_url, api_key=gatehouse.master_key, max_retries=0, timeout=20)
    try:
        resp = c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
        assert resp.choices[0].message.content == expected_reply(marker)
    finally:
        c.close()
