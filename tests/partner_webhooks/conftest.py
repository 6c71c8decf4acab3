"""A partner's webhook receiver on loopback, and helpers to deliver at a chosen time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from payments.partner_webhooks import delivery
from payments.partner_webhooks.models import WebhookEndpoint
from payments.partner_webhooks.services import webhook_endpoint_create
from tenants.services import Actor

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
                step = receiver.next_step()
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


def endpoint_for(tenant, url: str, **kwargs) -> tuple[WebhookEndpoint, str]:
    return webhook_endpoint_create(tenant=tenant, url=url, actor=Actor.system("test"), **kwargs)


def pump(*, now: datetime | None = None) -> int:
    """Fan out every recorded event and send what is due at `now`, as the tasks would."""
    sent = 0
    while delivery.events_dispatch().events:
        pass
    for _tenant_id, endpoint_id in delivery.endpoints_due(now=now):
        sent += delivery.endpoint_send_due(endpoint_id=endpoint_id, now=now).sent
    return sent
