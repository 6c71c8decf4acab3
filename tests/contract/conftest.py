"""Prism (Stoplight) serving Twilio's published OpenAPI spec, for the contract tests.

Prism validates each request against the spec. It answers 422 with the list of
violations when a request breaks the spec, and otherwise answers with the spec's static
example (sid PKaaaa…). One Prism runs per test session (per xdist worker). It listens
on a free loopback port, is polled until it answers (with a deadline, no fixed sleep),
and is stopped at the end. See docs/testing.md §4.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.peers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PRISM = REPO_ROOT / "node_modules" / ".bin" / "prism"
# The spec lives beside the repository (CI clones the repo with shared/ next to it).
SPEC = REPO_ROOT.parent / "shared" / "twilio-oai" / "twilio_api_v2010.yaml"
# Prism loads the whole 1.5 MB v2010 spec before it listens: about 2 s on an idle
# machine. The deadline leaves room for a loaded CI runner.
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 10.0


def _log_tail(log_path: Path, chars: int = 3000) -> str:
    try:
        return log_path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _wait_until_answering(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        try:
            requests.get(f"{url}/", timeout=0.5)  # any answer (404 here) means the spec is loaded
            return
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            pytest.fail(
                f"Prism exited with code {proc.returncode} before answering on {url}:\n{_log_tail(log_path)}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"Prism did not answer on {url} within {START_DEADLINE_S:.0f} s:\n{_log_tail(log_path)}", pytrace=False
            )
        time.sleep(0.05)  # poll interval, not a wait for an outcome


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Prism was started in its own process group; end that group and nothing else.
    for sig, wait in ((signal.SIGTERM, STOP_DEADLINE_S), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def prism_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prism's output (routes at startup, one VALIDATOR line per rejected request)."""
    return tmp_path_factory.mktemp("prism") / "prism.log"


@pytest.fixture(scope="session")
def prism_url(prism_log: Path) -> Iterator[str]:
    """Base URL of Prism mocking Twilio API 2010-04-01, for settings.TWILIO_API_BASE_URL."""
    if not os.access(PRISM, os.X_OK):
        # CI installs it (package.json pins @stoplight/prism-cli); a missing Prism must not
        # turn the contract tests into silent skips.
        pytest.fail(
            f"{PRISM.relative_to(REPO_ROOT)} is missing: run `npm ci` in {REPO_ROOT} "
            "to install Prism (pinned in package.json).",
            pytrace=False,
        )
    if not SPEC.is_file():
        pytest.fail(
            f"Twilio's OpenAPI spec is missing: expected {SPEC} "
            "(shared/twilio-oai/ checked out beside the repository).",
            pytrace=False,
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with prism_log.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv: the pinned Prism, our spec
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_answering(url, proc, prism_log)
        yield url
    finally:
        _stop(proc)
