"""HTTP front of the simulator (stdlib ThreadingHTTPServer) and ``start()``."""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .delivery import DeliveryWorker, Faults
from .engine import ControlError, Engine

logger = logging.getLogger(__name__)

KEYPAD_ROUTE = re.compile(r"^/_sim/calls/([^/]+)/keypad$")
MAX_BODY = 1 << 20


class Simulator:
    """A running simulator: ``url``, ``flush()``, ``stop()``."""

    def __init__(self, host: str, port: int, stripe_api_base: str) -> None:
        self.faults = Faults()
        self.worker = DeliveryWorker(self.faults)
        self.engine = Engine(self.worker, self.faults, stripe_api_base)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.simulator = self
        bound_host, bound_port = self._httpd.server_address[:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
        self.url = f"http://{shown}:{bound_port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="twilio-pay-sim-http", daemon=True
        )

    def serve_in_thread(self) -> Simulator:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.5)

    def flush(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until every queued callback is delivered; return those since the last flush."""
        return self.worker.flush(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        self.worker.stop()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(host: str = "127.0.0.1", port: int = 0, stripe_api_base: str = "http://127.0.0.1:8420") -> Simulator:
    """Start a simulator in daemon threads; port 0 picks a free port (see ``sim.url``)."""
    return Simulator(host, port, stripe_api_base).serve_in_thread()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: Simulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "TwilioPaySimulator/1.0"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # Paths carry SIDs only; bodies (where keypad digits live) are never logged.
        logger.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        sim = self.server.simulator
        parts = urlsplit(self.path)
        path = parts.path
        body = self._body()
        try:
            if path.startswith("/2010-04-01/"):
                headers = {k: v for k, v in self.headers.items()}
                status, answer = sim.engine.rest(self.command, path, headers, body)
                extra = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if status == 401 else {}
                self._json(status, answer, extra)
            elif path.startswith("/_sim/"):
                self._control(sim, path, parts.query, body)
            else:
                self._json(404, {"error": f"no route {path}"})
        except ControlError as exc:
            self._json(exc.status, {"error": exc.message})
        except TimeoutError as exc:
            pending = exc.args[1] if len(exc.args) > 1 else []
            self._json(504, {"error": str(exc.args[0]), "callbacks": pending})

    def _control(self, sim: Simulator, path: str, query: str, body: bytes) -> None:
        method = self.command
        keypad = KEYPAD_ROUTE.match(path)
        if keypad and method == "POST":
            self._json(200, sim.engine.keypad(keypad.group(1), _json_body(body)))
        elif path == "/_sim/accounts" and method == "POST":
            self._json(201, sim.engine.register_account(_json_body(body)))
        elif path == "/_sim/faults" and method == "POST":
            self._json(200, sim.engine.set_faults(_json_body(body)))
        elif path == "/_sim/flush" and method == "GET":
            try:
                timeout = min(float(parse_qs(query).get("timeout", ["10"])[0]), 60.0)
            except ValueError:
                raise ControlError(400, "timeout must be a number of seconds") from None
            self._json(200, {"callbacks": sim.flush(timeout)})
        elif path == "/_sim/requests" and method == "GET":
            self._json(200, {"requests": sim.engine.rest_log()})
        elif path == "/_sim/callbacks" and method == "GET":
            self._json(200, {"callbacks": sim.worker.delivered()})
        elif path == "/_sim/reset" and method == "POST":
            sim.engine.reset()
            self._json(200, {"reset": True})
        else:
            raise ControlError(404, f"no route {method} {path}")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

    def _json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ControlError(400, "body must be JSON") from None
