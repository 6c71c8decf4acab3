"""The one place that reads the environment (django-environ).

With no environment at all the project runs on embedded defaults for a first look
(DEBUG on, the embedded PostgreSQL that `make run` starts under var/, in-process tasks,
local simulators). With DEBUG off, every secret
must come from the environment: `required()` stops start-up naming the missing one.
"""

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import environ
from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's .env (never committed) is read when present; real environment wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=True)


def required(name: str, *, dev_default: T, read: Callable[[str], T] = env.str) -> T:
    """A value production must set; development falls back to `dev_default`.

    The one mechanism for required variables: `read` parses a value that is set
    (env.str, env.list, env.db_url, ...); a missing or empty one stops start-up naming
    it when DEBUG is off."""
    if env.str(name, default=""):
        return read(name)
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set in the environment when DEBUG is off.")


def rate_setting(name: str, *, default: str) -> str | None:
    """A DRF throttle rate ("1200/min"), checked at start-up; empty means no limit."""
    value = env.str(name, default=default).strip()
    if not value:
        return None
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|m|min|h|hour|d|day)", value):
        raise ImproperlyConfigured(f"{name} must look like 1200/min (a count per s, min, hour or day), not {value!r}.")
    return value


# The embedded PostgreSQL of the first run (simulators/postgres.py starts it): its data
# folder, and the database Paydesk uses on it.
EMBEDDED_PGDATA = BASE_DIR / "var" / "postgres"
EMBEDDED_DB_NAME = "paydesk"


def embedded_database_url(pgdata: Path = EMBEDDED_PGDATA, database: str = EMBEDDED_DB_NAME) -> str:
    """DATABASE_URL of the embedded server: it listens on a Unix socket only, in its data
    folder, or where its postmaster.pid says when that path was too long for a socket."""
    socket_dir = str(pgdata)
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        lines = []
    if len(lines) > 4 and lines[4].strip():
        socket_dir = lines[4].strip()
    # The socket folder as libpq's `host` parameter: Django and psql read it alike.
    return f"postgres://postgres@/{database}?host={quote(socket_dir, safe='/')}"
