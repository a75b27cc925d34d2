"""Runs last (alphabetically): the gateway's trace-level log for the whole session holds no secret.

The session ran gatehouse with `RUST_LOG=trace`; every other test's traffic, errors included,
went through it. The session fixture scans the log once more after shutdown.
"""

from __future__ import annotations

import time

import openai
import pytest

from _helpers import strip_ansi


def _traffic(gatehouse):
    """A little of everything, error paths included, so this file proves something when run alone."""
    c = gatehouse.client()
    try:
        for i in range(20):
            c.chat.completions.create(model="gpt-mock", messages=[{"role": "user", "content": f"log me {i}"}])
        c.chat.completions.create(model="azure-mock", messages=[{"role": "user", "content": "log me"}])
        c.embeddings.create(model="embed-mock", input=["log me"], encoding_format="float")
        for _ in c.chat.completions.create(
            model="gpt-mock", messages=[{"role": "user", "content": "log me"}], stream=True
        ):
            pass
        # The upstream refusing the configured key, and failing: where a careless log line
        # would print the key it used.
        for model, status in (("gpt-mock", 401), ("azure-mock", 403), ("gpt-mock", 503)):
            with pytest.raises(openai.APIStatusError):
                c.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": "log me"}],
                    extra_body={"mock": {"status": status, "key": f"zz-secrets-{status}"}},
                )
        with pytest.raises(openai.APIError):
            for _ in c.chat.completions.create(
                model="gpt-mock",
                messages=[{"role": "user", "content": "log me"}],
                stream=True,
                extra_body={"mock": {"chunks": 3, "fail_after_chunks": 1}},
            ):
                pass
    finally:
        c.close()
    bad = gatehouse.client(api_key="sk-wrong-key")
    try:
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    finally:
        bad.close()


def test_no_secret_in_the_trace_log(gatehouse):
    _traffic(gatehouse)
    time.sleep(0.5)  # let the last lines reach the file
    raw = gatehouse.log_path.read_text(errors="replace")
    text = strip_ansi(raw)
    lines = text.splitlines()

    # Trace logging was really on: a sizeable log, with trace-level lines in it.
    assert len(lines) >= 100, f"only {len(lines)} log lines: was RUST_LOG=trace honoured?"
    assert any("TRACE" in line for line in lines), "no TRACE line in the log"

    for name, value in gatehouse.secret_fragments():
        for where, haystack in (("log", raw), ("log without colours", text)):
            assert value not in haystack, f"{name} appears in the gatehouse {where} ({gatehouse.log_path})"
