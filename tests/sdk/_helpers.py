"""Small assertions shared by the SDK tests."""

from __future__ import annotations

import json
import re
import time
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Upper bounds for reading any one stream in a test.
STREAM_MAX_EVENTS = 10_000
STREAM_MAX_SECONDS = 30.0


def bounded(
    stream: Iterable[T], max_events: int = STREAM_MAX_EVENTS, max_seconds: float = STREAM_MAX_SECONDS
) -> Iterator[T]:
    """Iterates a stream, failing instead of looping forever."""
    deadline = time.monotonic() + max_seconds
    for i, item in enumerate(stream):
        assert i < max_events, f"stream sent more than {max_events} events"
        assert time.monotonic() < deadline, f"stream still going after {max_seconds} s"
        yield item


def strip_ansi(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def expected_reply(last_user_message: str) -> str:
    return f"Hello from mock: {last_user_message}"


def error_object(body: Any) -> dict[str, Any]:
    """The `error` object, from either a whole body or the SDK's `e.body` (already unwrapped)."""
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    if isinstance(body.get("error"), dict):
        body = body["error"]
    return body


def assert_error_envelope(body: Any, status: int) -> dict[str, Any]:
    """OpenAI's error shape with gatehouse's rule that `code` is the HTTP status as a string."""
    err = error_object(body)
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing: {err!r}"
    assert isinstance(err.get("type"), str) and err["type"], f"error.type missing: {err!r}"
    assert err.get("code") == str(status), f"error.code should be {str(status)!r}: {err!r}"
    assert "param" in err, f"error.param missing (null is fine): {err!r}"
    return err


def assert_no_secret(gatehouse: Any, text: str, where: str) -> None:
    for name, value in gatehouse.secret_fragments():
        assert value not in text, f"{name} appears in {where}"
