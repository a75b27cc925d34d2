"""Virtual keys through the official SDKs: spend, model access, budgets and rate limits as
the OpenAI and Anthropic clients see them, and the admin API refusing virtual keys."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from _helpers import assert_error_envelope


def _admin(gatehouse, http, path: str, body: dict) -> dict:
    r = http.post(path, json=body, headers={"Authorization": f"Bearer {gatehouse.master_key}"})
    assert r.status_code == 200, r.text
    return r.json()


def _key_info(gatehouse, http, key: str) -> dict:
    r = http.get("/key/info", params={"key": key}, headers={"Authorization": f"Bearer {gatehouse.master_key}"})
    assert r.status_code == 200, r.text
    return r.json()["info"]


def test_virtual_key_spend_shows_in_header_and_key_info(gatehouse, http, marker):
    made = _admin(gatehouse, http, "/key/generate", {"models": ["gpt-mock"], "key_alias": marker})
    key = made["key"]
    assert key.startswith("sk-")
    c = gatehouse.client(api_key=key)
    raw = c.chat.completions.with_raw_response.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": marker}],
        extra_body={"mock": {"usage": {"prompt_tokens": 1000, "completion_tokens": 500}}},
    )
    completion = raw.parse()
    assert completion.usage.prompt_tokens == 1000
    # $1/M input, $2/M output.
    assert float(raw.headers["x-litellm-response-cost"]) == pytest.approx(0.002, abs=1e-12)
    deadline = time.monotonic() + 1.0
    while True:
        spend = _key_info(gatehouse, http, key)["spend"]
        if spend == pytest.approx(0.002, abs=1e-12):
            break
        assert time.monotonic() < deadline, f"spend {spend} after 1 s"
        time.sleep(0.05)


def test_streamed_spend_without_usage_in_the_stream(gatehouse, http, marker):
    key = _admin(gatehouse, http, "/key/generate", {})["key"]
    c = gatehouse.client(api_key=key)
    stream = c.chat.completions.create(
        model="gpt-mock",
        messages=[{"role": "user", "content": marker}],
        stream=True,
        extra_body={"mock": {"usage": {"prompt_tokens": 2000, "completion_tokens": 1000}}},
    )
    chunks = list(stream)
    assert chunks and all(ch.usage is None for ch in chunks)
    deadline = time.monotonic() + 1.0
    while _key_info(gatehouse, http, key)["spend"] != pytest.approx(0.004, abs=1e-12):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_model_access_is_an_authentication_error(gatehouse, http):
    key = _admin(gatehouse, http, "/key/generate", {"models": ["gpt-mock"]})["key"]
    c = gatehouse.client(api_key=key)
    with pytest.raises(openai.AuthenticationError) as ei:
        c.chat.completions.create(model="claude-mock", messages=[{"role": "user", "content": "x"}])
    assert ei.value.status_code == 401
    assert ei.value.body["type"] == "key_model_access_denied"
    assert [m.id for m in c.models.list()] == ["gpt-mock"]


def test_user_models_limit_personal_keys(gatehouse, http, marker):
    """As LiteLLM: a personal key is limited by its user's `models` too (empty: all)."""
    user = _admin(gatehouse, http, "/user/new", {"user_id": marker, "models": ["gpt-mock"]})
    c = gatehouse.client(api_key=user["key"])
    assert c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}]).choices
    with pytest.raises(openai.AuthenticationError) as ei:
        c.chat.completions.create(model="claude-mock", messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["type"] == "key_model_access_denied"
    assert [m.id for m in c.models.list()] == ["gpt-mock"]
    info = http.get("/user/info", params={"user_id": marker}, headers={"Authorization": f"Bearer {gatehouse.master_key}"})
    assert info.status_code == 200, info.text
    assert info.json()["user_info"]["models"] == ["gpt-mock"]


def test_key_aliases_are_unique(gatehouse, http, marker):
    first = _admin(gatehouse, http, "/key/generate", {"key_alias": marker})
    r = http.post("/key/generate", json={"key_alias": marker}, headers={"Authorization": f"Bearer {gatehouse.master_key}"})
    assert r.status_code == 400, r.text
    assert_error_envelope(r.json(), 400)
    assert r.json()["error"]["message"] == (
        f"Key with alias '{marker}' already exists. Unique key aliases across all keys are required."
    )
    # The first key is untouched.
    assert _key_info(gatehouse, http, first["token"])["key_alias"] == marker


def test_budget_exceeded_is_a_rate_limit_error(gatehouse, http, marker):
    key = _admin(gatehouse, http, "/key/generate", {"max_budget": 0.0001})["key"]
    c = gatehouse.client(api_key=key)
    before = len(gatehouse.upstream_requests_with(marker))
    with pytest.raises(openai.RateLimitError) as ei:
        c.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": marker + " " + "x" * 500}]
        )
    assert ei.value.status_code == 429
    assert ei.value.body["type"] == "budget_exceeded"
    assert len(gatehouse.upstream_requests_with(marker)) == before


def test_rpm_limit_is_a_rate_limit_error_with_retry_after(gatehouse, http, marker):
    key = _admin(gatehouse, http, "/key/generate", {"rpm_limit": 1})["key"]
    c = gatehouse.client(api_key=key)
    c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
    with pytest.raises(openai.RateLimitError) as ei:
        c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
    assert 1 <= int(ei.value.response.headers["retry-after"]) <= 60
    assert ei.value.body["type"] == "rate_limit_error"


def test_anthropic_sdk_with_a_virtual_key(gatehouse, http, marker):
    key = _admin(gatehouse, http, "/key/generate", {"models": ["gpt-mock", "claude-mock"]})["key"]
    claude = anthropic.Anthropic(base_url=gatehouse.base_url, api_key=key, max_retries=0, timeout=20.0)
    msg = claude.messages.create(
        model="claude-mock", max_tokens=64, messages=[{"role": "user", "content": marker}]
    )
    assert msg.content
    with pytest.raises(anthropic.AuthenticationError) as ei:
        claude.messages.create(model="gemini-mock", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert ei.value.body["type"] == "error"


def test_virtual_keys_cannot_call_the_admin_api(gatehouse, http):
    key = _admin(gatehouse, http, "/key/generate", {})["key"]
    for path, body in [("/key/generate", {}), ("/key/delete", {"keys": [key]}), ("/user/new", {}), ("/team/new", {})]:
        r = http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403, (path, r.text)
        assert_error_envelope(r.json(), 403)
    # Nothing changed: the key still works.
    gatehouse.client(api_key=key).chat.completions.create(
        model="gpt-mock", messages=[{"role": "user", "content": "still here"}]
    )


def test_virtual_keys_are_never_logged(gatehouse, http, marker):
    """At RUST_LOG=trace, through success, refusal and admin paths: the raw key never appears
    in the log (its `sk-...abcd` display form may)."""
    made = _admin(gatehouse, http, "/key/generate", {"rpm_limit": 1, "models": ["gpt-mock"]})
    key = made["key"]
    c = gatehouse.client(api_key=key)
    c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="claude-mock", messages=[{"role": "user", "content": marker}])
    http.post("/key/generate", json={}, headers={"Authorization": f"Bearer {key}"})
    # A key in the path: refused for a virtual key, then regenerated with the master key.
    r = http.post(f"/key/{key}/regenerate", json={}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403, r.text
    r = http.post(f"/key/{key}/regenerate", json={}, headers={"Authorization": "Bearer sk-wrong"})
    assert r.status_code == 401, r.text
    newer = _admin(gatehouse, http, f"/key/{key}/regenerate", {})["key"]
    _admin(gatehouse, http, "/key/block", {"key": newer})
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": marker}])
    with pytest.raises(openai.AuthenticationError):
        gatehouse.client(api_key=newer).chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": marker}]
        )
    time.sleep(0.2)
    log = gatehouse.log_path.read_text(errors="replace")
    for k in (key, newer):
        assert k not in log
        assert k[3:] not in log
