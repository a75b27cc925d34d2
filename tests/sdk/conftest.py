"""Session fixtures for the SDK suite: the mock upstream and the real gatehouse binary.

One `gatehouse-mock` and one `gatehouse serve` run for the whole session. gatehouse runs with
`RUST_LOG=trace`, its output captured to a file that `test_zz_secrets_not_logged.py` (and the
session teardown) scan for secrets.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx2
import openai
import pytest

from _helpers import strip_ansi

REPO = Path(__file__).resolve().parents[2]
VERTEX_TEST_SA = REPO / "crates" / "gatehouse-mock" / "testdata" / "vertex-test-sa.json"
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0
# Hard bound on any single test (the client timeouts inside each test are far shorter).
TEST_TIMEOUT_S = 90

LISTENING = re.compile(r"listening\s+addr=\"?127\.0\.0\.1:(\d+)")

# Loopback must never go through a proxy, whatever the environment says.
for _var in ("NO_PROXY", "no_proxy"):
    _have = os.environ.get(_var, "")
    os.environ[_var] = ",".join(x for x in (_have, "127.0.0.1", "localhost") if x)


def _binary(env_var: str, default: Path) -> Path:
    path = Path(os.environ.get(env_var) or default)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"{env_var}: no executable at {path}. Build it first with "
            f"`cargo build -p gatehouse -p gatehouse-mock` (from {REPO}), "
            f"or point {env_var} at the binary.",
            pytrace=False,
        )
    return path


def _wait_for_line(path: Path, pattern: re.Pattern[str], proc: subprocess.Popen[bytes], what: str) -> int:
    """Polls `path` until a line matches `pattern`; returns the port. Bounded."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        text = strip_ansi(path.read_text(errors="replace")) if path.exists() else ""
        m = pattern.search(text)
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            pytest.fail(
                f"{what} exited with status {proc.returncode} before it was listening; "
                f"its output ({path}):\n{text[-4000:]}",
                pytrace=False,
            )
        time.sleep(0.05)
    pytest.fail(
        f"{what} was not listening after {STARTUP_TIMEOUT_S:.0f} s; its output ({path}):\n"
        f"{strip_ansi(path.read_text(errors='replace'))[-4000:] if path.exists() else ''}",
        pytrace=False,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait (bounded), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=SHUTDOWN_TIMEOUT_S)


def _hex() -> str:
    return secrets.token_hex(16)


@dataclass
class Gatehouse:
    """A running gateway in front of a running mock, and what the tests need to know about them."""

    port: int
    mock_port: int
    master_key: str
    openai_key: str
    azure_key: str
    embed_key: str
    anthropic_key: str
    gemini_key: str
    aws_secret: str
    log_path: Path
    config_path: Path
    http: httpx2.Client = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mock_url(self) -> str:
        return f"http://127.0.0.1:{self.mock_port}"

    def secret_fragments(self) -> list[tuple[str, str]]:
        """(name, value) of each secret and of its random part alone."""
        return _secret_fragments(
            self.master_key,
            self.openai_key,
            self.azure_key,
            self.embed_key,
            self.anthropic_key,
            self.gemini_key,
            self.aws_secret,
        )

    def client(self, api_key: str | None = None, timeout: float = 20.0) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=api_key if api_key is not None else self.master_key,
            max_retries=0,
            timeout=timeout,
        )

    # --- the mock's record of what reached the upstream ---

    def upstream_requests(self) -> list[dict[str, Any]]:
        r = self.http.get(f"{self.mock_url}/_mock/requests")
        r.raise_for_status()
        out = []
        for rec in r.json():
            rec = dict(rec)
            rec["headers"] = {str(k).lower(): v for k, v in (rec.get("headers") or {}).items()}
            body = rec.get("body")
            if isinstance(body, (bytes, str)):
                try:
                    body = json.loads(body)
                except ValueError:
                    pass
            rec["body"] = body
            path = rec.get("path") or ""
            query = rec.get("query")
            if query and "?" not in path:
                path = f"{path}?{query}"
            rec["path"] = path
            out.append(rec)
        return out

    def upstream_requests_with(self, marker: str) -> list[dict[str, Any]]:
        """The recorded upstream requests whose body mentions `marker` anywhere."""
        return [r for r in self.upstream_requests() if marker in json.dumps(r.get("body"))]


@pytest.fixture(scope="session")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gatehouse]:
    gatehouse_bin = _binary("GATEHOUSE_BIN", REPO / "target" / "debug" / "gatehouse")
    mock_bin = _binary("GATEHOUSE_MOCK_BIN", REPO / "target" / "debug" / "gatehouse-mock")
    workdir = tmp_path_factory.mktemp("gatehouse")

    # No colours, and nothing from the developer's environment that could change behaviour.
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUST_LOG", "GATEHOUSE_"))}
    base_env["NO_COLOR"] = "1"

    # The mock verifies Bedrock's SigV4 signatures with the credentials the gateway gets.
    aws_secret = f"aws-SECRET-{_hex()}"
    mock_out = workdir / "mock.stdout"
    mock_err = workdir / "mock.stderr"
    with open(mock_out, "wb") as out, open(mock_err, "wb") as err:
        mock = subprocess.Popen(
            [
                str(mock_bin),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--aws-credentials",
                f"AKIDEXAMPLE:{aws_secret}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=base_env,
        )
    gw: subprocess.Popen[bytes] | None = None
    http = httpx2.Client(timeout=10.0, trust_env=False)
    try:
        mock_port = _wait_for_line(mock_out, LISTENING, mock, "gatehouse-mock")

        master_key = f"sk-master-SECRET-{_hex()}"
        openai_key = f"sk-upstream-SECRET-{_hex()}"
        azure_key = f"azure-SECRET-{_hex()}"
        embed_key = f"sk-upstream-SECRET-{_hex()}"
        anthropic_key = f"sk-ant-SECRET-{_hex()}"
        gemini_key = f"gemini-SECRET-{_hex()}"
        # The committed test-only service account, its token_uri pointed at the mock.
        vertex_sa = json.loads(VERTEX_TEST_SA.read_text())
        vertex_sa["token_uri"] = f"http://127.0.0.1:{mock_port}/token"
        vertex_sa_path = workdir / "vertex-sa.json"
        vertex_sa_path.write_text(json.dumps(vertex_sa))
        config_path = workdir / "config.yaml"
        config_path.write_text(
            f"""\
model_list:
  - model_name: gpt-mock
    litellm_params:
      model: openai/mock-gpt
      api_base: http://127.0.0.1:{mock_port}/v1
      api_key: {openai_key}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: azure-mock
    litellm_params:
      model: azure/mock-deployment
      api_base: http://127.0.0.1:{mock_port}
      api_key: {azure_key}
      api_version: "2024-10-21"
  - model_name: embed-mock
    litellm_params:
      model: openai/mock-embed
      api_base: http://127.0.0.1:{mock_port}/v1
      api_key: {embed_key}
  - model_name: claude-mock
    litellm_params:
      model: anthropic/claude-upstream
      api_base: http://127.0.0.1:{mock_port}
      api_key: {anthropic_key}
  - model_name: gemini-mock
    litellm_params:
      model: gemini/gemini-upstream
      api_base: http://127.0.0.1:{mock_port}
      api_key: {gemini_key}
  - model_name: bedrock-mock
    litellm_params:
      model: bedrock/anthropic.claude-upstream-v1:0
      aws_bedrock_runtime_endpoint: http://127.0.0.1:{mock_port}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {aws_secret}
  - model_name: bedrock-titan-mock
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      aws_bedrock_runtime_endpoint: http://127.0.0.1:{mock_port}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {aws_secret}
  - model_name: bedrock-cohere-mock
    litellm_params:
      model: bedrock/cohere.embed-english-v3
      aws_bedrock_runtime_endpoint: http://127.0.0.1:{mock_port}
      aws_region_name: us-east-1
      aws_access_key_id: AKIDEXAMPLE
      aws_secret_access_key: {aws_secret}
  - model_name: vertex-mock
    litellm_params:
      model: vertex_ai/gemini-vertex-upstream
      api_base: http://127.0.0.1:{mock_port}
      vertex_project: sdk-proj
      vertex_location: us-central1
      vertex_credentials: {vertex_sa_path}
  - model_name: claude-vertex-mock
    litellm_params:
      model: vertex_ai/claude-vertex-upstream@20250514
      api_base: http://127.0.0.1:{mock_port}
      vertex_project: sdk-proj
      vertex_location: us-east5
      vertex_credentials: {vertex_sa_path}
  - model_name: gemini-3-mock
    litellm_params:
      model: gemini/gemini-3-upstream
      api_base: http://127.0.0.1:{mock_port}
      api_key: {gemini_key}
general_settings:
  master_key: {master_key}
  max_request_size_mb: 1
"""
        )

        log_path = workdir / "gatehouse.log"
        env = dict(base_env, RUST_LOG="trace")
        with open(log_path, "ab") as log:
            gw = subprocess.Popen(
                [
                    str(gatehouse_bin),
                    "serve",
                    "--config",
                    str(config_path),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
        port = _wait_for_line(log_path, LISTENING, gw, "gatehouse serve")

        yield Gatehouse(
            port=port,
            mock_port=mock_port,
            master_key=master_key,
            openai_key=openai_key,
            azure_key=azure_key,
            embed_key=embed_key,
            anthropic_key=anthropic_key,
            gemini_key=gemini_key,
            aws_secret=aws_secret,
            log_path=log_path,
            config_path=config_path,
            http=http,
        )
    finally:
        http.close()
        if gw is not None:
            _stop(gw)
        _stop(mock)

    # After a clean shutdown the log is complete: scan it once more, shutdown lines included.
    text = log_path.read_text(errors="replace")
    leaked = [
        name
        for name, value in _secret_fragments(
            master_key, openai_key, azure_key, embed_key, anthropic_key, gemini_key, aws_secret
        )
        if value in text
    ]
    assert not leaked, f"secrets found in the gatehouse log after shutdown: {leaked} (log: {log_path})"


def _secret_fragments(*keys: str) -> list[tuple[str, str]]:
    """Each key, and its random part alone (a 'redaction' that keeps the random part leaks it)."""
    names = [
        "master_key",
        "openai upstream api_key",
        "azure upstream api_key",
        "embeddings upstream api_key",
        "anthropic upstream api_key",
        "gemini upstream api_key",
        "bedrock aws_secret_access_key",
    ]
    out = []
    for name, key in zip(names, keys, strict=True):
        out.append((f"{name} (whole)", key))
        out.append((f"{name} (random part)", key.rsplit("-", 1)[-1]))
    return out


@pytest.fixture
def client(gatehouse: Gatehouse) -> Iterator[openai.OpenAI]:
    c = gatehouse.client()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def http(gatehouse: Gatehouse) -> Iterator[httpx2.Client]:
    """A plain HTTP client on the gateway, for what the SDK will not send."""
    with httpx2.Client(base_url=gatehouse.base_url, timeout=20.0, trust_env=False) as c:
        yield c


@pytest.fixture
def marker() -> str:
    """A unique string to put in a request, to find it again in the mock's record."""
    return f"marker-{uuid.uuid4().hex}"


# --- a hard per-test time limit (SIGALRM; Linux, main thread) ---


class TimeLimitExceeded(Exception):
    pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    def on_alarm(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"{item.nodeid} took longer than {TEST_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
