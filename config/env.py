"""The one place that reads the environment (django-environ).

With no environment at all the project runs on embedded defaults for a first look
(DEBUG on, SQLite, in-process tasks, local simulators). With DEBUG off, every secret
must come from the environment: `required()` stops start-up naming the missing one.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's .env (never committed) is read when present; real environment wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=True)


def required(name: str, *, dev_default: str) -> str:
    """A value production must set; development falls back to `dev_default`."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(f"{name} must be set in the environment when DEBUG is off.")
