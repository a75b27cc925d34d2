"""Errors as the OpenAI SDK sees them: class, status, and the `{"error": {...}}` envelope."""

from __future__ import annotations

import json
import time
import uuid

import openai
import pytest

from _helpers import assert_error_envelope, assert_no_secret, bounded, error_object

CHAT = "/v1/chat/completions"


def _chat_body(content: str = "hi", **extra) -> dict:
    return {"model": "gpt-mock", "messages": [{"role": "user", "content": content}], **extra}


def _mock_key() -> str:
    return f"key-{uuid.uuid4()}"


# --- authentication ---


def test_401_without_a_key(gatehouse, http, marker):
    r = http.post(CHAT, json=_chat_body(marker))
    assert r.status_code == 401, r.text
    assert_error_envelope(r.json(), 401)
    assert_no_secret(gatehouse, r.text, "the 401 body")
    assert gatehouse.upstream_requests_with(marker) == []


def test_401_with_a_wrong_key(gatehouse, marker):
    bad = gatehouse.client(api_key="sk-not-the-master-key")
    try:
        with pytest.raises(openai.AuthenticationError) as ei:
            bad.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
    finally:
        bad.close()
    e = ei.value
    assert e.status_code == 401
    assert_error_envelope(e.body, 401)
    assert_no_secret(gatehouse, e.response.text, "the 401 body")
    assert gatehouse.upstream_requests_with(marker) == []


@pytest.mark.parametrize("header", ["x-api-key", "x-litellm-api-key", "api-key"])
def test_key_in_other_headers(gatehouse, http, header, marker):
    ok = http.post(CHAT, json=_chat_body(marker), headers={header: gatehouse.master_key})
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["content"] == f"Hello from mock: {marker}"

    bad = http.post(CHAT, json=_chat_body(marker), headers={header: "sk-not-the-master-key"})
    assert bad.status_code == 401, bad.text
    assert_error_envelope(bad.json(), 401)


def test_bearer_is_required_in_authorization(gatehouse, http):
    r = http.post(CHAT, json=_chat_body(), headers={"authorization": f"Basic {gatehouse.master_key}"})
    assert r.status_code == 401, r.text
    assert_error_envelope(r.json(), 401)
    assert_no_secret(gatehouse, r.text, "the 401 body")


# --- malformed requests ---


def test_400_malformed_json(gatehouse, http):
    r = http.post(
        CHAT,
        content=b"{not json",
        headers={"authorization": f"Bearer {gatehouse.master_key}", "content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert_error_envelope(r.json(), 400)


def test_400_missing_messages(gatehouse, http):
    r = http.post(
        CHAT, json={"model": "gpt-mock"}, headers={"authorization": f"Bearer {gatehouse.master_key}"}
    )
    assert r.status_code == 400, r.text
    err = assert_error_envelope(r.json(), 400)
    assert err["param"] == "messages" or "messages" in err["message"], err


def test_400_empty_messages_via_sdk(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="gpt-mock", messages=[])
    assert ei.value.status_code == 400
    err = assert_error_envelope(ei.value.body, 400)
    assert "messages" in (err.get("param") or "") + err["message"], err


def test_unknown_model(gatehouse, client, marker):
    name = f"no-such-model-{marker}"
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as ei:
        client.chat.completions.create(model=name, messages=[{"role": "user", "content": marker}])
    e = ei.value
    assert e.status_code in (400, 404)
    err = assert_error_envelope(e.body, e.status_code)
    assert name in err["message"], err
    assert gatehouse.upstream_requests_with(marker) == []


def test_413_body_too_large(gatehouse, client, marker):
    big = marker + "x" * (1024 * 1024 + 100_000)
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": big}])
    e = ei.value
    assert e.status_code == 413
    assert_error_envelope(e.body, 413)
    assert gatehouse.upstream_requests_with(marker) == []


def test_just_under_the_size_limit_is_accepted(client):
    content = "y" * (1024 * 1024 - 4096)
    resp = client.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": content}])
    assert resp.choices[0].message.content == f"Hello from mock: {content}"


# --- upstream errors ---


def test_upstream_400_passes_through(gatehouse, client):
    key = _mock_key()
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": "bad for upstream"}],
            extra_body={"mock": {"status": 400, "key": key}},
        )
    e = ei.value
    assert e.status_code == 400
    assert_error_envelope(e.body, 400)
    assert_no_secret(gatehouse, e.response.text, "the relayed upstream error")
    # A client error is not retried.
    assert len(gatehouse.upstream_requests_with(key)) == 1


def test_upstream_503_becomes_502_after_retries(gatehouse, client):
    key = _mock_key()
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": "upstream down"}],
            extra_body={"mock": {"status": 503, "key": key}},
        )
    e = ei.value
    assert isinstance(e, openai.InternalServerError)
    assert e.status_code == 502
    assert_error_envelope(e.body, 502)
    assert_no_secret(gatehouse, e.response.text, "the 502 body")
    assert len(gatehouse.upstream_requests_with(key)) >= 2, "the gateway did not retry"


def test_upstream_500_once_is_retried(gatehouse, client):
    key = _mock_key()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "flaky"}],
        extra_body={"mock": {"status": 500, "fail_times": 1, "key": key}},
    )
    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content == "Hello from mock: flaky"
    assert len(gatehouse.upstream_requests_with(key)) == 2
    attempted = raw.headers.get("x-litellm-attempted-retries")
    assert attempted in (None, "1"), attempted


def test_upstream_429_after_retries_keeps_retry_after(gatehouse, client):
    key = _mock_key()
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(
            model="gpt-mock",
            messages=[{"role": "user", "content": "slow down"}],
            extra_body={"mock": {"status": 429, "retry_after": "1", "key": key}},
            timeout=40,
        )
    e = ei.value
    assert e.status_code == 429
    assert_error_envelope(e.body, 429)
    retry_after = e.response.headers.get("retry-after")
    assert retry_after is not None, dict(e.response.headers)
    assert int(retry_after) >= 1
    attempts = len(gatehouse.upstream_requests_with(key))
    assert attempts >= 2, "the gateway did not retry the 429"
    # It waited out the upstream's retry-after between attempts.
    assert time.monotonic() - started >= (attempts - 1) * 1.0 * 0.9


def test_mid_stream_failure_raises_api_error(gatehouse, client):
    stream = client.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": "cut me off"}],
        stream=True,
        extra_body={"mock": {"chunks": 5, "fail_after_chunks": 2, "key": _mock_key()}},
        timeout=10,
    )
    received = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as ei:
        for chunk in bounded(stream, max_seconds=15):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert time.monotonic() - started < 10, "the stream hung instead of failing"
    e = ei.value
    # The gateway's error event, not a dropped connection or a timeout.
    assert not isinstance(e, openai.APIConnectionError), f"got {type(e).__name__}: {e}"
    err = error_object(e.body)
    assert err.get("message"), err
    assert_no_secret(gatehouse, json.dumps(err), "the stream error event")
    assert received, "the chunks before the failure should have arrived"


def test_mid_stream_failure_is_one_sse_error_event(gatehouse, http):
    body = _chat_body(
        "cut me off raw", stream=True, mock={"chunks": 5, "fail_after_chunks": 2, "key": _mock_key()}
    )
    events = []
    with http.stream(
        "POST", CHAT, json=body, headers={"authorization": f"Bearer {gatehouse.master_key}"}, timeout=10
    ) as r:
        assert r.status_code == 200
        buf = ""
        for text in bounded(r.iter_text(), max_seconds=15):
            buf += text
        events = [e.strip() for e in buf.replace("\r\n", "\n").split("\n\n") if e.strip()]
    data = [e[len("data:") :].strip() for e in events if e.startswith("data:")]
    assert data, events
    assert data[-1] != "[DONE]", "a failed stream must not end like a complete one"
    last = json.loads(data[-1])
    assert_error_envelope(last, int(error_object(last)["code"]))
    assert error_object(last)["code"] in ("502", "504")
