"""Test peers as pytest fixtures: localstripe, the Twilio Pay simulator, a callback sink.

Loaded as a plugin (``pytest_plugins = ["tests.peers"]`` in tests/conftest.py).
Every peer listens on a free loopback port. Nothing here waits with a fixed
sleep: localstripe is polled until it answers (with a deadline), the
simulator's callbacks are awaited with ``flush()``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from simulators import twilio_pay
from simulators.twilio_pay import SimulatorClient

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCALSTRIPE_START_DEADLINE_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- localstripe ---------------------------------------------------------------


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """Base URL of a localstripe subprocess (loopback, in memory) for the whole session."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter, our module
            [
                sys.executable,
                "-m",
                "simulators.localstripe_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--quiet",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            _wait_for_localstripe(url, proc, stderr)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_localstripe(url: str, proc: subprocess.Popen[bytes], stderr: Any) -> None:
    deadline = time.monotonic() + LOCALSTRIPE_START_DEADLINE_S
    while True:
        try:
            if requests.get(f"{url}/v1/balance", auth=("sk_test_x", ""), timeout=0.5).ok:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            stderr.seek(0)
            tail = stderr.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"localstripe did not start on {url}:\n{tail}")
        time.sleep(0.05)  # poll interval, not a wait for an outcome


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    """localstripe with its data flushed and its test clock at the real time (webhook
    registrations survive a flush)."""
    requests.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    return localstripe_url


# --- the Twilio Pay simulator --------------------------------------------------


class TwilioSim(SimulatorClient):
    """The control client of a simulator running in this process."""

    def __init__(self, simulator: twilio_pay.Simulator) -> None:
        super().__init__(simulator.url)
        self.simulator = simulator


@pytest.fixture
def twilio_sim(localstripe_url: str) -> Iterator[TwilioSim]:
    """A fresh simulator on a free loopback port, charging through localstripe.

    ``.url`` for ``client.api.base_url``; ``register_account``, ``press``,
    ``time_out``, ``press_star``, ``hang_up``, ``flush``, ``requests``,
    ``callbacks`` and ``set_faults`` drive and inspect it.
    """
    simulator = twilio_pay.start(host="127.0.0.1", port=0, stripe_api_base=localstripe_url)
    try:
        yield TwilioSim(simulator)
    finally:
        simulator.stop()


# --- a StatusCallback receiver -------------------------------------------------


@dataclass
class ReceivedPost:
    path: str  # with the query string
    url: str  # absolute, as the sender addressed it
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class CallbackSink:
    url: str  # base URL, e.g. http://127.0.0.1:40123 (any path is accepted)
    received: list[ReceivedPost] = field(default_factory=list)
    status: int = 204  # what the sink answers; a test may set 500 to play a failing receiver

    def url_for(self, path: str = "/twilio/pay/status") -> str:
        return self.url + path


@pytest.fixture
def callback_sink() -> Iterator[CallbackSink]:
    """A loopback HTTP server that records every POST (path, headers, form) and answers 204."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            post = ReceivedPost(
                path=self.path,
                url=sink.url + self.path,
                headers=dict(self.headers.items()),
                form=dict(parse_qsl(body, keep_blank_values=True)),
            )
            with lock:
                sink.received.append(post)
            self.send_response(sink.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink = CallbackSink(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
