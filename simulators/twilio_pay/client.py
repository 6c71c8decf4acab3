"""A small HTTP client for the simulator's control API (/_sim/...).

Used by the keypad CLI and by the test fixtures, so tests drive the simulator
the same way a developer does from a shell.
"""

from __future__ import annotations

from typing import Any

import requests


class SimulatorError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"simulator answered {status}: {body}")
        self.status = status
        self.body = body


class SimulatorClient:
    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout

    # -- setup ------------------------------------------------------------------

    def register_account(
        self, account_sid: str, auth_token: str, connectors: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """connectors: {"Stripe_Dev": {"stripe_secret_key": "sk_test_...", ["stripe_api_base": URL]}}"""
        body = {"account_sid": account_sid, "auth_token": auth_token, "connectors": connectors}
        return self._call("POST", "/_sim/accounts", json=body)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """duplicate_callbacks=bool, bad_signature=bool, fail_next_rest={"status": 500} or None."""
        return self._call("POST", "/_sim/faults", json=faults)

    def reset(self) -> None:
        self._call("POST", "/_sim/reset")

    # -- the caller ---------------------------------------------------------------

    def keypad(self, call_sid: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/_sim/calls/{call_sid}/keypad", json=payload)

    def press(self, call_sid: str, digits: str) -> dict[str, Any]:
        return self.keypad(call_sid, {"digits": digits})

    def time_out(self, call_sid: str) -> dict[str, Any]:
        return self.keypad(call_sid, {"timeout": True})

    def press_star(self, call_sid: str) -> dict[str, Any]:
        return self.keypad(call_sid, {"digits": "*"})

    def hang_up(self, call_sid: str) -> dict[str, Any]:
        return self.keypad(call_sid, {"hangup": True})

    # -- inspection ---------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for every queued callback; return those delivered since the last flush."""
        answer = self._call("GET", "/_sim/flush", params={"timeout": timeout}, http_timeout=timeout + 5)
        return list(answer["callbacks"])

    def requests(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_sim/requests")["requests"])

    def callbacks(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_sim/callbacks")["callbacks"])

    def _call(self, method: str, path: str, *, http_timeout: float | None = None, **kwargs: Any) -> Any:
        response = requests.request(method, self.url + path, timeout=http_timeout or self._timeout, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if not response.ok:
            raise SimulatorError(response.status_code, body)
        return body
