"""Signed StatusCallback delivery: one background thread, one ordered queue.

Twilio answers the REST call first and posts callbacks afterwards (docs/twilio-pay.md
§8). One worker per simulator keeps them in order; ``flush`` lets a
test wait for the queue to drain instead of sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

logger = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 10.0
USER_AGENT = "TwilioProxy/1.1"  # what Twilio's webhooks send


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature for a form POST (§6).

    base64(HMAC-SHA1(auth token, url + name1 + value1 + name2 + value2 ...)),
    names sorted. Equivalent to twilio.request_validator.RequestValidator's
    compute_signature for single-valued parameters.
    """
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Faults:
    """Switches set through POST /_sim/faults."""

    duplicate_callbacks: bool = False
    bad_signature: bool = False
    fail_next_rest: int | None = None  # HTTP status for the next REST answer

    def as_dict(self) -> dict[str, Any]:
        return {
            "duplicate_callbacks": self.duplicate_callbacks,
            "bad_signature": self.bad_signature,
            "fail_next_rest": None if self.fail_next_rest is None else {"status": self.fail_next_rest},
        }


@dataclass
class Callback:
    url: str
    params: dict[str, str]
    auth_token: str = field(repr=False)


# A queue item is a Callback, or a job that runs on the worker (e.g. talking
# to Stripe after Status=complete) and returns the callbacks to post then.
Job = Callable[[], list[Callback]]


class DeliveryWorker:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self._queue: queue.Queue[Callback | Job | None] = queue.Queue()
        self._cond = threading.Condition()
        self._pending = 0
        self._delivered: list[dict[str, Any]] = []
        self._flushed_upto = 0
        self._http = requests.Session()
        self._thread = threading.Thread(target=self._run, name="twilio-pay-sim-delivery", daemon=True)
        self._thread.start()

    # -- producer side --------------------------------------------------------

    def put(self, item: Callback | Job) -> None:
        with self._cond:
            self._pending += 1
        self._queue.put(item)

    def flush(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until the queue is empty; return what was delivered since the last flush.

        Raises TimeoutError (carrying the partial list as ``args[1]``) when the
        queue does not drain within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._pending} callback job(s) still pending", self._take_new())
                self._cond.wait(remaining)
            return self._take_new()

    def delivered(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(d) for d in self._delivered]

    def reset(self) -> None:
        with self._cond:
            self._delivered.clear()
            self._flushed_upto = 0

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._http.close()

    def _take_new(self) -> list[dict[str, Any]]:
        new = self._delivered[self._flushed_upto :]
        self._flushed_upto = len(self._delivered)
        return [dict(d) for d in new]

    # -- worker side ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                callbacks = [item] if isinstance(item, Callback) else item()
                for callback in callbacks:
                    self._deliver(callback)
            except Exception:  # keep the worker alive whatever a job does
                logger.exception("simulator job failed")
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _deliver(self, callback: Callback) -> None:
        key = callback.auth_token + ("-wrong" if self._faults.bad_signature else "")
        signature = twilio_signature(key, callback.url, callback.params)
        # Twilio sends the same idempotency token on every retry of a webhook,
        # so a duplicate delivery carries the same one.
        token = secrets.token_hex(16)
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": USER_AGENT,
        }
        for _ in range(2 if self._faults.duplicate_callbacks else 1):
            status: int | None = None
            error: str | None = None
            try:
                response = self._http.post(
                    callback.url, data=callback.params, headers=headers, timeout=DELIVERY_TIMEOUT_S
                )
                status = response.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            logger.debug("callback sid=%s -> %s", callback.params.get("Sid"), status or error)
            with self._cond:
                self._delivered.append(
                    {
                        "url": callback.url,
                        "params": dict(callback.params),
                        "headers": dict(headers),
                        "status": status,
                        "error": error,
                    }
                )
