"""The embedded PostgreSQL runner (simulators/postgres.py): what `make run` and `make test`
use when no PostgreSQL is at hand. Run in fresh interpreters, as the Makefile runs it."""

import json
import socket
import subprocess
import sys

from django.conf import settings

from simulators.postgres import answers
from tests.peers import free_port

SHOW = (
    "import json, os, psycopg; url = os.environ.get('DATABASE_URL', '');"
    "row = psycopg.connect(url).execute('select current_database(), version()').fetchone() if url else None;"
    "print(json.dumps({'url': url, 'row': row, 'settings': os.environ.get('DJANGO_SETTINGS_MODULE')}))"
)


def _runner(*args: str) -> dict:
    env = {"PATH": "/usr/bin:/bin"}  # no DATABASE_URL: the runner decides
    proc = subprocess.run(
        [sys.executable, "-m", "simulators.postgres", "run", *args, "--", sys.executable, "-c", SHOW],
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.BASE_DIR,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_answers_tells_a_listening_port_from_a_free_one():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        assert answers("127.0.0.1", listening.getsockname()[1])
    assert not answers("127.0.0.1", free_port())


def test_with_nothing_answering_the_command_runs_on_the_embedded_postgresql():
    result = _runner("--unless-answers", f"127.0.0.1:{free_port()}")
    assert result["url"].startswith("postgres://postgres@/paydesk?host=")
    assert result["url"].endswith(str(settings.BASE_DIR / "var" / "postgres"))
    database, version = result["row"]
    assert database == "paydesk" and version.startswith("PostgreSQL ")
    # The command gets the environment the runner was given (no settings module of its own).
    assert result["settings"] is None


def test_with_a_server_answering_the_command_keeps_its_own_database_settings():
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        result = _runner("--unless-answers", f"127.0.0.1:{listening.getsockname()[1]}")
    assert result == {"url": "", "row": None, "settings": None}
