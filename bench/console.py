"""Live updates of the agent console: what a poll costs beside /healthz, and what
Server-Sent Events would cost on the same workers, side by side in one run.

    .venv/bin/python bench/console.py [--requests 2000] [--concurrency 4] [--rounds 3]

Starts, on loopback only and always stops again: a fresh PostgreSQL database
(`paydesk_bench_console`, migrated, dropped at the end unless --keep), Redis db 13
(flushed), and gunicorn serving bench.stack (production settings, DEBUG off) with 2 sync
workers, one per core, as Paydesk is deployed. One tenant, an agent signed in (a session
cookie), and a pay session with a realistic history: four fields asked for, one entered
wrong and asked again, partial results, 30-odd callbacks.

Side by side, in rounds alternating so that the machine's noise falls on every side
(round 0 is a warm-up and left out):

* /healthz: no database, no work: the floor of this stack;
* poll, unchanged: GET the session's state with If-None-Match = the version shown: 304.
  What an open console page does every PAYDESK_CONSOLE_POLL_MS, nearly always;
* poll, changed: the same without If-None-Match: 200 with the state (after a callback);
* page: the session page itself (its first load).

It prints requests/s and latency (p50, p99) per side, each side's cost against /healthz,
and what one sync worker can carry at one poll per PAYDESK_CONSOLE_POLL_MS.

Then Server-Sent Events, the alternative, through a bench-only view (bench/stack/urls.py)
that does what an SSE console would: hold the response open and push the state's version
whenever it changes (looked at every 100 ms). It opens one stream more than there are
workers, each held --sse-seconds, and measures each stream's wait for its first event and
a /healthz made while they are open. A sync worker serves one response at a time, so an
open stream is a worker taken for the whole call.
"""

import argparse
import http.client
import json
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as bench/console.py, the project is one level up

from bench.callbacks import BIN, PG_ADMIN, Proc, bench_env, free_port, pct, run, wait_until  # noqa: E402

REDIS_DB = 13
SIDES = ["healthz", "poll-304", "poll-200", "page"]


def setup_world() -> None:
    """Runs in a subprocess with the bench environment; prints what the client needs."""
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from connectors.services import connector_create
    from payments.sessions import callbacks
    from payments.sessions.models import PayEvent, PaySession
    from payments.sessions.services import pay_callback_record, pay_events_apply_pending
    from tenants.models import Role
    from tenants.services import Actor, membership_set, tenant_create

    actor = Actor.system("bench")
    tenant = tenant_create(
        slug="bench",
        name="Bench",
        twilio_account_sid="AC" + secrets.token_hex(16),
        twilio_auth_token=secrets.token_hex(16),
        actor=actor,
    )
    connector = connector_create(
        tenant=tenant,
        unique_name="Stripe_Bench",
        environment="development",
        stripe_secret_key="sk_test_" + secrets.token_hex(12),
        actor=actor,
    )
    agent = get_user_model().objects.create_user("agent", password=secrets.token_hex(8))
    membership_set(tenant=tenant, user=agent, role=Role.AGENT, actor=actor)
    session = PaySession(
        tenant=tenant,
        connector=connector,
        call_sid="CA" + secrets.token_hex(16),
        payment_sid="PK" + secrets.token_hex(16),
        idempotency_key="bench-console",
        request_fingerprint="b" * 64,
        amount_minor=1250,
        currency="USD",
        started_by_user=agent,
    )
    session.required_fields = callbacks.initial_required(session)
    session.save()

    at = timezone.now()
    fields = ["expiration-date", "expiration-date", "postal-code", "payment-card-number", "security-code"]
    entries = {
        "expiration-date": {"ExpirationDate": "1230"},
        "postal-code": {"PaymentCardPostalCode": "94105"},
        "payment-card-number": {"PaymentCardNumber": "xxxxxxxxxxxx4242", "PaymentCardType": "visa"},
        "security-code": {"SecurityCode": "xxx"},
    }
    names = {
        "payment-card-number": "PaymentCardNumber",
        "expiration-date": "ExpirationDate",
        "security-code": "SecurityCode",
        "postal-code": "PostalCode",
    }
    required = list(names)
    for index, field in enumerate(fields):
        PayEvent.objects.create(
            tenant=tenant,
            session=session,
            direction="out",
            kind="capture",
            dedupe_key=f"bench-{index}",
            payload={"capture": field},
            http_status=202,
        )
        wrong = index == 0  # the first expiry is refused, then asked again
        done = [f for f in required if not (f == field and not wrong)]
        steps = [
            {"PartialResult": "false", "Required": ",".join(names[f] for f in required)},
            *[{"PartialResult": "true", "Required": ",".join(names[f] for f in required)}] * 3,
            {"PartialResult": "false", "Required": ",".join(names[f] for f in done)}
            | ({"ErrorType": "invalid-date"} if wrong else entries[field]),
        ]
        for step in steps:
            at += timedelta(milliseconds=150)
            params = {
                "AccountSid": tenant.twilio_account_sid,
                "CallSid": session.call_sid,
                "Sid": session.payment_sid,
                "Capture": field,
                "DateUpdated": at.isoformat(),
                **step,
            }
            pay_callback_record(tenant_id=tenant.pk, session_id=session.pk, raw_params=params)
        required = done
    pay_events_apply_pending()

    # Signed in with the second factor verified, as production requires (django-otp keeps
    # the verified device's id in the session).
    from django_otp import DEVICE_ID_SESSION_KEY

    from tenants.security.services import totp_enrolment_start

    device = totp_enrolment_start(user=agent)
    type(device).objects.filter(pk=device.pk).update(confirmed=True)
    device.refresh_from_db()
    store = SessionStore()
    store[SESSION_KEY] = str(agent.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = agent.get_session_auth_hash()
    store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store["paydesk_login_at"] = time.time()  # tenants/security/middleware.py: the session's start
    store.create()
    json.dump(
        {
            "session": str(session.uuid),
            "cookie": f"sessionid={store.session_key}",
            "events": PayEvent.objects.filter(session=session).count(),
        },
        sys.stdout,
    )


class Side:
    def __init__(self, name: str):
        self.name, self.latencies, self.seconds, self.statuses = name, [], 0.0, {}


def hammer(port: int, path: str, headers: dict, *, n: int, concurrency: int, side: Side) -> None:
    """n GETs of path by `concurrency` keep-alive clients; latencies and wall time into side."""
    lock, left = threading.Lock(), [n]

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            elapsed = time.perf_counter() - t0
            with lock:
                side.latencies.append(elapsed)
                side.statuses[status] = side.statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    side.seconds += time.perf_counter() - t0


def sse_streams(port: int, path: str, *, streams: int, seconds: float) -> tuple[list[float], float]:
    """Open `streams` event streams at once; each one's wait (s) for its first event, and
    how long a /healthz made meanwhile took."""
    firsts = [float("nan")] * streams
    started = threading.Barrier(streams + 1)

    def stream(i: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds * (streams + 2))
        started.wait()
        t0 = time.perf_counter()
        conn.request("GET", f"{path}?seconds={seconds}")
        response = conn.getresponse()
        line = response.readline()  # the first event's first line
        if line.startswith(b"data:"):
            firsts[i] = time.perf_counter() - t0
        response.read()
        conn.close()

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    started.wait()
    # Look once every stream has had time to be taken by a worker, then time a /healthz.
    time.sleep(0.5)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds * (streams + 2))
    t0 = time.perf_counter()
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    healthz = time.perf_counter() - t0
    conn.close()
    for t in threads:
        t.join()
    return firsts, healthz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per side per round (2000)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (4)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds after the warm-up (3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--poll-ms", type=int, default=500, help="the console's poll interval to reason with")
    parser.add_argument("--sse-seconds", type=float, default=3.0, help="how long each SSE stream stays open")
    parser.add_argument("--db-name", default="paydesk_bench_console")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs for inspection")
    parser.add_argument("--setup-world", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_world:
        setup_world()
        return 0
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        parser.error("--db-name: lower-case letters, digits and underscores")

    import psycopg
    import redis

    port = free_port()
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    env = bench_env(args, port=port, redis_url=redis_url)
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
        broker = redis.Redis.from_url(redis_url, socket_timeout=5)
        broker.ping()
    except Exception as exc:
        print(f"PostgreSQL or Redis not reachable on loopback ({exc}); `make services` starts them.", file=sys.stderr)
        return 2
    logdir = Path(tempfile.mkdtemp(prefix="paydesk-bench-console-"))
    gunicorn = None
    try:
        print(f"setting up: database {args.db_name}, redis db {REDIS_DB}, gunicorn on 127.0.0.1:{port}", flush=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.db_name}"')
        broker.flushdb()
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env)
        world = json.loads(run([sys.executable, __file__, "--setup-world"], env=env))
        gunicorn = Proc(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--worker-class",
                "sync",
                "--timeout",
                str(int(args.sse_seconds * 4 + 30)),
                "--no-control-socket",
                "--log-level",
                "warning",
            ],
            env={**env, "DJANGO_SETTINGS_MODULE": "bench.stack.settings"},
            logdir=logdir,
        )

        def healthy():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200

        wait_until("gunicorn answers", healthy, timeout=60, alive=[gunicorn])

        cookie = {"Cookie": world["cookie"], "Accept": "application/json"}
        state_path = f"/console/sessions/{world['session']}/state"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", state_path, headers=cookie)
        first = conn.getresponse()
        body = first.read()
        etag = first.getheader("ETag")
        conn.close()
        if first.status != 200 or not etag:
            print(f"FAIL: the state answered {first.status}: {body[:300]!r}", file=sys.stderr)
            return 1
        requests = {
            "healthz": ("/healthz", {}),
            "poll-304": (state_path, {**cookie, "If-None-Match": etag}),
            "poll-200": (state_path, cookie),
            "page": (f"/console/sessions/{world['session']}/", {"Cookie": world["cookie"]}),
        }
        expected = {"healthz": 200, "poll-304": 304, "poll-200": 200, "page": 200}
        print(
            f"{world['events']} events in the session, state {len(body)} bytes; "
            f"{args.rounds} rounds of {args.requests} requests per side, {args.concurrency} clients, "
            f"{args.workers} sync workers",
            flush=True,
        )
        sides = {name: Side(name) for name in SIDES}
        for round_no in range(args.rounds + 1):
            for name in SIDES if round_no % 2 else reversed(SIDES):
                side = sides[name] if round_no else Side(name)  # round 0: warm-up
                path, headers = requests[name]
                hammer(port, path, headers, n=args.requests, concurrency=args.concurrency, side=side)

        ok = True
        print(f"\n{'side':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cost ÷ healthz':>15}")
        rates = {}
        for name in SIDES:
            side = sides[name]
            rates[name] = len(side.latencies) / side.seconds
            good = side.statuses.get(expected[name], 0)
            if good != len(side.latencies):
                ok = False
                print(f"FAIL: {name} answered {side.statuses}, expected all {expected[name]}")
            print(
                f"{name:<10} {rates[name]:>8.0f} {pct(side.latencies, 0.5) * 1000:>8.1f} "
                f"{pct(side.latencies, 0.99) * 1000:>8.1f} {rates['healthz'] / rates[name]:>15.2f}"
            )
        busy = min(args.workers, args.concurrency)  # workers kept busy by the clients
        per_poll_ms = busy * 1000 / rates["poll-304"]  # worker-ms per unchanged poll
        pages_per_worker = 1000 / per_poll_ms * args.poll_ms / 1000
        print(
            f"\nan unchanged poll takes {per_poll_ms:.1f} worker-ms: at one poll per {args.poll_ms} ms, one sync "
            f"worker carries about {pages_per_worker:.0f} open console pages ({args.workers} workers: "
            f"{pages_per_worker * args.workers:.0f})"
        )

        firsts, healthz = sse_streams(
            port, f"/bench/console-sse/{world['session']}", streams=args.workers + 1, seconds=args.sse_seconds
        )
        waits = sorted(firsts)
        print(
            f"\nSSE, {args.workers + 1} streams held {args.sse_seconds:.0f} s each on {args.workers} sync workers: "
            f"first event after {', '.join(f'{w:.2f}' for w in waits)} s; a /healthz meanwhile took {healthz:.2f} s"
        )
        print(
            "  → each open SSE page holds a worker for the whole call: "
            f"{args.workers} workers serve {args.workers} agents, and everyone else (callbacks included) waits."
        )
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            broker.flushdb()
        else:
            print(f"kept: database {args.db_name}, logs in {logdir}")


if __name__ == "__main__":
    sys.exit(main())
