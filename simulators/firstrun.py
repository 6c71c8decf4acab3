"""`make run`: the whole platform on one machine for a first look, with nothing installed
beyond the virtualenv and nothing to start by hand.

    python -m simulators.firstrun [--port 8000] [--localstripe-port 8420] [--twilio-sim-port 8425]

What it starts, each on loopback, and stops again (Ctrl-C, or SIGTERM to this process):

* PostgreSQL: the one DATABASE_URL names, or else the embedded server (simulators/postgres.py,
  data in var/postgres), which stops with this command;
* migrations and the demo tenant (seed_demo, idempotent);
* localstripe (Stripe) and the Twilio Pay simulator;
* Django's development server;
* the schedule: with REDIS_URL set, a Celery worker with beat, as in production; without
  it, beat alone, and beat runs each due task itself (tasks run in-process when there is
  no broker: CELERY_TASK_ALWAYS_EAGER). Reconciliation runs on that schedule, and also
  right after each payment's result (payments.reconciliation, "reconcile soon"): in the
  web server's own thread without Redis, in the worker with it.

The simulators' and the server's URLs are passed to every process it starts, so other
ports than the defaults work; commands run by hand in another terminal need the same
variables, which it prints when a port is not the default.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PORTS = {"port": 8000, "localstripe_port": 8420, "twilio_sim_port": 8425}
START_DEADLINE_S = 60.0


class Children:
    """The processes started here, each in its own process group (so that a runserver's
    autoreloader child or a Celery pool goes with its parent)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str]) -> None:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=self.env, start_new_session=True)  # noqa: S603
        self.procs.append((name, proc))

    def exited(self) -> tuple[str, int] | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self) -> None:
        # Stopping is not to be interrupted by a second Ctrl-C or SIGTERM: no child is left
        # running without its supervisor.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def _wait_until_up(url: str, children: Children) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if children.exited():
            return
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own loopback server
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)  # poll interval while the server starts


def serve(args: argparse.Namespace, database_url: str | None) -> int:
    python = sys.executable
    base = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if database_url:
        env["DATABASE_URL"] = database_url
    # The URLs every process must agree on; values already in the environment win.
    shared = {
        "PAYDESK_PUBLIC_BASE_URL": base,
        "STRIPE_API_BASE_URL": f"http://127.0.0.1:{args.localstripe_port}",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{args.twilio_sim_port}",
    }
    for name, value in shared.items():
        env.setdefault(name, value)
    manage = [python, "manage.py"]
    children = Children(env)
    try:
        children.start(
            "localstripe",
            [python, "-m", "simulators.localstripe_server", "--host", "127.0.0.1"]
            + ["--port", str(args.localstripe_port), "--quiet"],
        )
        children.start(
            "twilio simulator",
            [python, "-m", "simulators.twilio_pay", "serve", "--host", "127.0.0.1", "--port", str(args.twilio_sim_port)]
            + ["--stripe-api-base", env["STRIPE_API_BASE_URL"]],
        )
        subprocess.run([*manage, "migrate", "--noinput"], cwd=REPO_ROOT, env=env, check=True)  # noqa: S603
        _wait_until_up(f"{env['TWILIO_API_BASE_URL']}/_sim/requests", children)
        # The demo account is registered with the simulator, so the API can start a session at once.
        seed = [*manage, "seed_demo", "--register-with-simulator"]
        subprocess.run(seed, cwd=REPO_ROOT, env=env, check=True)  # noqa: S603
        celery = [str(Path(python).with_name("celery")), "-A", "config"]
        if env.get("REDIS_URL"):
            children.start("celery worker and beat", [*celery, "worker", "--beat", "--loglevel=INFO"])
            tasks = "a Celery worker and beat (REDIS_URL is set)"
        else:
            children.start("celery beat", [*celery, "beat", "--loglevel=INFO"])
            tasks = "in-process: no REDIS_URL, so beat runs scheduled tasks itself and the web server the rest"
        children.start("runserver", [*manage, "runserver", f"127.0.0.1:{args.port}"])
        _wait_until_up(f"{base}/", children)
        print(f"\nPaydesk is up at {base}/ — tasks: {tasks}. Ctrl-C stops everything.", flush=True)
        if _non_default(args):
            exports = " ".join(f"{name}={env[name]}" for name in shared)
            print(f"In another terminal, first: export {exports}", flush=True)
        while (gone := children.exited()) is None:
            time.sleep(0.5)  # supervising: notice a child that died
        print(f"{gone[0]} exited with {gone[1]}; stopping the rest.", file=sys.stderr, flush=True)
        return gone[1] or 1
    except KeyboardInterrupt:
        return 0
    finally:
        children.stop()


def _non_default(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) != value for name, value in DEFAULT_PORTS.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.firstrun", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["port"], help="Paydesk's port (8000)")
    parser.add_argument("--localstripe-port", type=int, default=DEFAULT_PORTS["localstripe_port"])
    parser.add_argument("--twilio-sim-port", type=int, default=DEFAULT_PORTS["twilio_sim_port"])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if os.environ.get("DATABASE_URL"):
        return serve(args, None)
    from simulators.postgres import embedded

    try:
        with embedded() as url:
            print(f"Embedded PostgreSQL up: DATABASE_URL={url}", flush=True)
            return serve(args, url)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
