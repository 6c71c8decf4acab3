"""Test peers as pytest fixtures: localstripe, the Twilio Pay simulator, a callback sink,
a partner's webhook receiver.

Loaded as a plugin (``pytest_plugins = ["tests.peers"]`` in tests/conftest.py).
Every peer listens on a free loopback port. Nothing here waits with a fixed
sleep: localstripe is polled until it answers (with a deadline), the
simulator's callbacks are awaited with ``flush()``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from standardwebhooks import Webhook

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


# --- a partner's webhook receiver ------------------------------------------------

HANG = "hang"  # a script step: answer nothing until the test ends (the sender times out)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    answered: int | None  # None: hung up on (timed out on our side)

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers from `script` (one step per request, then 200)."""

    port: int
    received: list[Received] = field(default_factory=list)
    script: list = field(default_factory=list)
    answer_body: bytes = b'{"ok":true}'
    redirect_to: str = ""
    # payload → a status for this request, or None to take the next scripted step. For tests
    # that must fail one particular event whatever order concurrent sends arrive in.
    answer_for: Callable[[dict], int | None] | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/paydesk"

    def answer(self, *steps) -> None:
        self.script.extend(steps)

    def next_step(self):
        with self.lock:
            return self.script.pop(0) if self.script else 200

    def acknowledged(self) -> list[Received]:
        return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def types(self) -> list[str]:
        return [r.payload["type"] for r in self.acknowledged()]

    def verify_all(self, secret: str) -> list[dict]:
        """Every request verified with standardwebhooks; their payloads."""
        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.received]

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chosen = receiver.answer_for(json.loads(body)) if receiver.answer_for else None
                step = chosen if chosen is not None else receiver.next_step()
                record = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, None)
                with receiver.lock:
                    receiver.received.append(record)
                if step == HANG:
                    receiver.release.wait(10)
                    return
                record.answered = step
                payload = receiver.answer_body
                self.send_response(step)
                if receiver.redirect_to and 300 <= step < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: the port refuses connections until start() again."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recv = Receiver(port=0)
    recv.start()
    try:
        yield recv
    finally:
        recv.release.set()
        recv.stop()
