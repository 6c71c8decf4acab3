"""Partner webhooks: deliveries per second through the real pipeline against a bare loop
of signed POSTs, side by side, to the same local receiver; then exactly once under failures.

    .venv/bin/python bench/webhooks.py [--events 2000] [--sessions 200] [--rounds 3]

Starts, on loopback only and always stops again: a fresh PostgreSQL database
(`paydesk_bench_webhooks`, migrated), Redis db 13 (flushed), a Celery worker (prefork,
concurrency 2) with production settings (DEBUG off) except that private addresses and
http are allowed (the receiver is on loopback), and a receiver process: a threaded HTTP
server that verifies every signature with `standardwebhooks` and counts what it
acknowledges per `webhook-id` and per session.

Each round measures both sides on the same receiver:

- bare: one process signs (standardwebhooks) and POSTs the same payloads in a loop, one
  after the other, on a keep-alive connection: what a single sender does with no
  database, no queue and no bookkeeping;
- pipeline: a producer process records the events in the outbox (events_record, 20 per
  transaction, as the pay-event applier writes a batch of sessions' changes), each
  commit wakes the dispatcher, the worker fans the events out into deliveries and sends
  them: from the first record to the receiver's last acknowledgement.

The headline is pipeline ÷ bare (goal 0.5 or better). Then a last run has the receiver
answer 500 to the first three attempts of 10% of the events (chosen by their id) and
checks that every event was acknowledged exactly once, each session's events in order.
A failed check exits 1; a missed goal exits 0 unless --strict.
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as bench/webhooks.py, the project is one level up

from bench.callbacks import (  # noqa: E402  (after the path)
    PG_ADMIN,
    Proc,
    children,
    free_port,
    run,
    wait_until,
)

BIN = Path(sys.executable).parent
REDIS_DB = 13  # bench/callbacks.py uses 14, the test suite 15
DB_NAME = "paydesk_bench_webhooks"
GOAL = 0.5
PER_TRANSACTION = 20
FAIL_FIRST = 3  # attempts the receiver fails for the chosen events


def sample_data(session: int, seq: int) -> dict:
    """About the size and shape of a pay session as the API shows it."""
    return {
        "id": f"00000000-0000-4000-8000-{session:012d}",
        "seq": seq,
        "connector": "Stripe_Bench",
        "environment": "development",
        "channel": "agent",
        "call_sid": "CA" + "0" * 32,
        "payment_sid": "PK" + "1" * 32,
        "status": "capturing",
        "payment_method": "credit-card",
        "charge_amount": "12.50",
        "amount_minor": 1250,
        "currency": "USD",
        "required_fields": ["security-code", "postal-code"],
        "capturing_field": "expiration-date",
        "card": {"number_masked": "xxxxxxxxxxxx4242", "last4": "4242", "type": "visa", "expiration": "1230"},
        "outcome": {"result": "", "payment_confirmation_code": "", "payment_error": "", "pay_error_code": ""},
        "description": "Invoice 42",
        "created_at": "2026-11-21T10:00:00.000000Z",
        "updated_at": "2026-11-21T10:00:05.000000Z",
    }


# --- The receiver (its own process) -----------------------------------------------------


def chosen_to_fail(msg_id: str, share: float) -> bool:
    return share > 0 and int(hashlib.sha256(msg_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def serve_receiver(port: int, secret: str) -> None:
    from standardwebhooks import Webhook

    hook = Webhook(secret)
    lock = threading.Lock()
    state = {"fail_share": 0.0}
    stats: dict = {}

    def reset():
        stats.update(acked=0, duplicates=0, bad_signature=0, failed_answers=0, last_ack=0.0, out_of_order=0)
        stats["attempts"], stats["acked_ids"], stats["last_seq"] = {}, set(), {}

    reset()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, for both sides

        def reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with lock:
                body = {k: v for k, v in stats.items() if k not in ("attempts", "acked_ids", "last_seq")}
                attempts = stats["attempts"]
                body["chosen"] = sum(1 for i in attempts if chosen_to_fail(i, state["fail_share"]))
                body["chosen_attempts"] = sorted(
                    {n for i, n in attempts.items() if chosen_to_fail(i, state["fail_share"])}
                )
                body["others_attempts"] = sorted(
                    {n for i, n in attempts.items() if not chosen_to_fail(i, state["fail_share"])}
                )
            self.reply(200, json.dumps(body).encode())

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/_control":
                with lock:
                    reset()
                    state.update(json.loads(data))
                return self.reply(204)
            try:
                payload = hook.verify(data, dict(self.headers.items()))
            except Exception:
                with lock:
                    stats["bad_signature"] += 1
                return self.reply(400)
            msg_id = self.headers["webhook-id"]
            with lock:
                n = stats["attempts"][msg_id] = stats["attempts"].get(msg_id, 0) + 1
                if chosen_to_fail(msg_id, state["fail_share"]) and n <= FAIL_FIRST:
                    stats["failed_answers"] += 1
                    fail = True
                else:
                    fail = False
                    if msg_id in stats["acked_ids"]:
                        stats["duplicates"] += 1
                    stats["acked_ids"].add(msg_id)
                    stats["acked"] += 1
                    stats["last_ack"] = time.time()
                    session, seq = payload["data"]["id"], payload["data"]["seq"]
                    if seq <= stats["last_seq"].get(session, -1):
                        stats["out_of_order"] += 1
                    stats["last_seq"][session] = seq
            self.reply(500 if fail else 204)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever(poll_interval=0.05)


class ReceiverClient:
    def __init__(self, port: int):
        self.port = port

    def _call(self, method: str, path: str, body: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def control(self, **state) -> None:
        status, _ = self._call("POST", "/_control", json.dumps(state).encode())
        assert status == 204

    def stats(self) -> dict:
        return json.loads(self._call("GET", "/_stats")[1])


# --- Django-side helpers (subprocesses with the bench environment) ---------------------


def setup_world() -> None:
    """Spec on stdin; the endpoint's secret on stdout."""
    import django

    django.setup()
    from payments.partner_webhooks.services import webhook_endpoint_create
    from tenants.services import Actor, tenant_create

    spec = json.load(sys.stdin)
    actor = Actor.system("bench")
    tenant = tenant_create(
        slug="bench",
        name="Bench",
        twilio_account_sid="AC" + secrets.token_hex(16),
        twilio_auth_token=secrets.token_hex(16),
        actor=actor,
    )
    _, secret = webhook_endpoint_create(tenant=tenant, url=spec["url"], actor=actor)
    json.dump({"tenant_id": tenant.pk, "secret": secret}, sys.stdout)


def produce() -> None:
    """Record the events of `sessions` sessions, `seq` by `seq`, PER_TRANSACTION per commit.
    Prints the wall-clock time it started."""
    import django

    django.setup()
    from django.db import connection, transaction

    from payments.outbox.services import NewEvent, events_record

    spec = json.load(sys.stdin)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    db_cpu0 = cpu_seconds([backend])
    pending = [
        NewEvent(
            tenant_id=spec["tenant_id"],
            type="pay_session.updated",
            data=sample_data(session, seq),
            ordering_key=f"pay_session:{spec['round']}:{session}",
        )
        for seq in range(spec["per_session"])
        for session in range(spec["sessions"])
    ]
    for event in pending:  # each round its own sessions
        event.data["id"] = f"{spec['round']}-{event.data['id']}"
    started, cpu0 = time.time(), time.process_time()
    for start in range(0, len(pending), PER_TRANSACTION):
        with transaction.atomic():
            events_record(pending[start : start + PER_TRANSACTION])
    recorded, cpu = time.time(), time.process_time() - cpu0  # recording only, not starting Django
    db_cpu = cpu_seconds([backend]) - db_cpu0  # this connection's backend
    json.dump({"started": started, "recorded": recorded, "cpu": cpu, "db_cpu": db_cpu}, sys.stdout)


# --- The two sides ----------------------------------------------------------------------


def bare_loop(port: int, secret: str, *, events: int, sessions: int, round_: int) -> float:
    """Signed POSTs one after the other from this process; returns deliveries per second."""
    from rest_framework.utils.encoders import JSONEncoder
    from standardwebhooks import Webhook

    from payments.partner_webhooks import signing

    hook = Webhook(secret)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    per_session = events // sessions
    t0 = time.perf_counter()
    for seq in range(per_session):
        for session in range(sessions):
            data = sample_data(session, seq)
            data["id"] = f"bare{round_}-{data['id']}"
            body = json.dumps(
                {"type": "pay_session.updated", "timestamp": "2026-11-21T10:00:05.000000Z", "data": data},
                cls=JSONEncoder,
                separators=(",", ":"),
            )
            msg_id = "evt_" + secrets.token_hex(16)
            headers = {
                **signing.headers(msg_id=msg_id, body=body, secrets_=[secret]),
                "Content-Type": "application/json",
                "User-Agent": "bench",
            }
            conn.request("POST", "/bare", body=body.encode(), headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"bare loop: receiver answered {response.status}")
    elapsed = time.perf_counter() - t0
    conn.close()
    del hook
    return per_session * sessions / elapsed


def pipeline(env, receiver: ReceiverClient, world, *, events, sessions, round_, alive, cpu, timeout=300) -> dict:
    spec = {"tenant_id": world["tenant_id"], "sessions": sessions, "per_session": events // sessions, "round": round_}
    total = spec["sessions"] * spec["per_session"]
    before = cpu.snapshot()
    produced = json.loads(run([sys.executable, __file__, "--produce"], env=env, input=json.dumps(spec)))
    wait_until(
        f"round {round_}: the receiver acknowledged {total} events",
        lambda: receiver.stats()["acked"] >= total,
        timeout=timeout,
        interval=0.05,
        alive=alive,
    )
    stats = receiver.stats()
    used = cpu.since(before)
    used["producer"] = produced["cpu"]
    used["database"] += produced["db_cpu"]
    return {
        "cpu": {k: v * 1e3 / total for k, v in used.items()},  # ms per delivery
        "rate": total / (stats["last_ack"] - produced["started"]),
        "record_rate": total / (produced["recorded"] - produced["started"]),
        "stats": stats,
        "total": total,
    }


def cpu_seconds(pids) -> float:
    """User + system CPU of processes, from /proc/<pid>/stat: threads that have exited
    included (the receiver's and Celery's come and go)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


class Cpu:
    """Seconds on a CPU per role: what a delivery costs whatever else the shared machine
    is running (throughput is not)."""

    def __init__(self, admin, db_name: str, *, worker=None, receiver=None):
        self.admin, self.db_name, self.worker, self.receiver = admin, db_name, worker, receiver

    def pids(self) -> dict[str, list[int]]:
        backends = [
            pid
            for (pid,) in self.admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.db_name]
            )
        ]
        worker = [self.worker.pid, *children(self.worker.pid)] if self.worker else []
        return {"sender": worker, "database": backends, "receiver": [self.receiver.pid] if self.receiver else []}

    def snapshot(self) -> dict:
        return {role: {pid: cpu_seconds([pid]) for pid in pids} for role, pids in self.pids().items()} | {
            "self": time.process_time()
        }

    def since(self, before: dict) -> dict[str, float]:
        now = self.snapshot()
        used = {
            role: sum(v - before[role].get(pid, 0.0) for pid, v in now[role].items())
            for role in ("sender", "database", "receiver")
        }
        used["producer"] = now["self"] - before["self"]  # the bare loop runs in this process
        return used


def bench_env(*, db_name: str, redis_url: str, threads: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "PAYDESK_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "False",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789-abcdefghijkl",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "PAYDESK_PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "PAYDESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "WARNING",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        "STRIPE_API_BASE_URL": "http://127.0.0.1:9",
        # The receiver is on loopback, over http: allowed here only.
        "PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "True",
        "PAYDESK_WEBHOOKS_ALLOW_INSECURE_URLS": "True",
        # Retries in fractions of a second instead of 30 s, so the failure run ends soon.
        "PAYDESK_WEBHOOKS_RETRY_BASE_SECONDS": "0.2",
        "PAYDESK_WEBHOOKS_SEND_THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per round and side (2000)")
    parser.add_argument("--sessions", type=int, default=200, help="sessions (ordering keys) per round (200)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds after a warm-up (3)")
    parser.add_argument("--threads", type=int, default=4, help="PAYDESK_WEBHOOKS_SEND_THREADS (4)")
    parser.add_argument("--fail-share", type=float, default=0.1, help="share failed 3 times in the last run (0.1)")
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--redis-db", type=int, default=REDIS_DB)
    parser.add_argument("--keep", action="store_true", help="keep the database and logs for inspection")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 when pipeline/bare is under {GOAL}")
    parser.add_argument("--setup-world", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--receiver", nargs=2, metavar=("PORT", "SECRET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_world:
        setup_world()
        return 0
    if args.produce:
        produce()
        return 0
    if args.receiver:
        serve_receiver(int(args.receiver[0]), args.receiver[1])
        return 0
    if args.events < args.sessions or args.sessions < 1 or args.rounds < 1:
        parser.error("need --events >= --sessions >= 1 and --rounds >= 1")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        parser.error("--db-name: lower-case letters, digits and underscores")

    import psycopg
    import redis

    t_start = time.monotonic()
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    env = bench_env(db_name=args.db_name, redis_url=redis_url, threads=args.threads)
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
        broker = redis.Redis.from_url(redis_url, socket_timeout=5)
        broker.ping()
    except Exception as exc:
        print(f"PostgreSQL or Redis not reachable on loopback ({exc}); `make services` starts them.", file=sys.stderr)
        return 2

    logdir = Path(tempfile.mkdtemp(prefix="paydesk-bench-webhooks-"))
    procs: list[Proc] = []
    failed = True
    try:
        print(f"setting up: database {args.db_name}, redis db {args.redis_db}", flush=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.db_name}"')
        broker.flushdb()
        run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env)

        port = free_port()
        world_spec = json.dumps({"url": f"http://127.0.0.1:{port}/hooks/paydesk"})
        world = json.loads(run([sys.executable, __file__, "--setup-world"], env=env, input=world_spec))
        procs.append(
            Proc(
                "receiver", [sys.executable, __file__, "--receiver", str(port), world["secret"]], env=env, logdir=logdir
            )
        )
        receiver = ReceiverClient(port)
        wait_until("the receiver answers", lambda: receiver.stats() is not None, timeout=30, alive=procs)
        procs.append(
            Proc(
                "celery",
                [
                    str(BIN / "celery"),
                    "-A",
                    "config",
                    "worker",
                    "--concurrency",
                    "2",
                    "--pool",
                    "prefork",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench-webhooks-{os.getpid()}@%h",
                ],
                env=env,
                logdir=logdir,
            )
        )
        from celery import Celery

        control = Celery(broker=redis_url)
        wait_until(
            "celery worker answers ping", lambda: control.control.ping(timeout=0.5), timeout=60, interval=0, alive=procs
        )
        control.close()

        # The bare loop signs in this process, with the project's own signing module.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
        os.environ.update({k: env[k] for k in ("DEBUG", "DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL")})
        os.environ.update({k: env[k] for k in ("ALLOWED_HOSTS", "PAYDESK_PUBLIC_BASE_URL", "PAYDESK_ENCRYPTION_KEYS")})
        import django

        django.setup()

        sessions, events = args.sessions, args.events - args.events % args.sessions
        print(
            f"load: {events} events per side and round ({sessions} sessions × {events // sessions}), "
            f"{PER_TRANSACTION} recorded per transaction; worker prefork 2 × {args.threads} send threads; "
            "round 0 warms up",
            flush=True,
        )
        results = []
        receiver_proc, celery_proc = procs
        cpu = Cpu(admin, args.db_name, worker=celery_proc, receiver=receiver_proc)
        bare_cpu: list[dict] = []
        for rnd in range(args.rounds + 1):
            receiver.control(fail_share=0.0)
            before = cpu.snapshot()
            bare = bare_loop(port, world["secret"], events=events, sessions=sessions, round_=rnd)
            bare_cpu.append({k: v * 1e3 / events for k, v in cpu.since(before).items()})
            bare_stats = receiver.stats()
            receiver.control(fail_share=0.0)
            piped = pipeline(env, receiver, world, events=events, sessions=sessions, round_=rnd, alive=procs, cpu=cpu)
            ok = piped["stats"]["duplicates"] == 0 and piped["stats"]["bad_signature"] == 0
            ok = ok and bare_stats["bad_signature"] == 0
            results.append((rnd, bare, piped, ok))
            print(
                f"  round {rnd}: bare {bare:7.1f}/s  pipeline {piped['rate']:7.1f}/s  "
                f"ratio {piped['rate'] / bare:.2f}  "
                f"(recording alone {piped['record_rate']:.0f}/s)" + ("" if ok else "  CHECK FAILED"),
                flush=True,
            )

        # Exactly once while the receiver fails the first three attempts of a share of the events.
        receiver.control(fail_share=args.fail_share)
        t0 = time.monotonic()
        faulty = pipeline(
            env, receiver, world, events=events, sessions=sessions, round_=args.rounds + 1, alive=procs, cpu=cpu
        )
        faulty_wall = time.monotonic() - t0
        stats = faulty["stats"]
        dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={args.db_name}"
        with psycopg.connect(dsn, autocommit=True) as db:
            by_status = dict(
                db.execute("SELECT status, count(*) FROM partner_webhooks_webhookdelivery GROUP BY status").fetchall()
            )
            (undispatched,) = db.execute("SELECT count(*) FROM outbox_event WHERE dispatched_at IS NULL").fetchone()

        measured = [r for r in results if r[0] > 0]
        ratios = [p["rate"] / b for _, b, p, _ in measured]
        bare_rates = [b for _, b, _, _ in measured]
        pipe_rates = [p["rate"] for _, _, p, _ in measured]
        ratio = statistics.median(ratios)
        all_events = sum(r[2]["total"] for r in results) + faulty["total"]
        checks = [
            ("every round: each event acknowledged once, every signature valid", all(r[3] for r in results), ""),
            (
                "failure run: every event acknowledged exactly once",
                stats["acked"] == faulty["total"] and stats["duplicates"] == 0 and stats["bad_signature"] == 0,
                f"{stats['acked']}/{faulty['total']} acknowledged, {stats['duplicates']} duplicates",
            ),
            (
                "failure run: the chosen events failed three times, then arrived on the fourth attempt",
                stats["chosen"] > 0
                and stats["chosen_attempts"] == [FAIL_FIRST + 1]
                and stats["others_attempts"] == [1],
                f"{stats['chosen']} chosen ({stats['chosen'] / faulty['total']:.1%}), attempts per event: chosen "
                f"{stats['chosen_attempts']}, others {stats['others_attempts']}; "
                f"{stats['failed_answers']} 500s answered",
            ),
            (
                "failure run: each session's events acknowledged in order",
                stats["out_of_order"] == 0,
                f"{stats['out_of_order']} out of order",
            ),
            (
                "every delivery succeeded, every event fanned out",
                set(by_status) == {"succeeded"} and by_status["succeeded"] == all_events and undispatched == 0,
                f"{by_status}; {undispatched} not dispatched",
            ),
        ]
        print(f"\n== partner webhooks: rounds 1-{args.rounds}, {events} events per side and round")
        for label, rates in (
            ("bare loop (one process, sequential, keep-alive)", bare_rates),
            ("pipeline (outbox → Celery → HTTP)", pipe_rates),
        ):
            listed = ", ".join(f"{r:.0f}" for r in rates)
            print(f"{label:48s} {statistics.median(rates):7.1f} deliveries/s (median; rounds: {listed})")
        print(f"ratio pipeline/bare: {ratio:.2f} (per round {', '.join(f'{r:.2f}' for r in ratios)})")
        print(
            "ms on a CPU per delivery (rounds 1-N, mean): producer (bare: the loop signing and sending; "
            "pipeline: recording the events), worker (Celery: dispatch and send), database, receiver"
        )
        for label, rows in (("bare", bare_cpu[1:]), ("pipeline", [p["cpu"] for _, _, p, _ in measured])):
            mean = {k: statistics.mean(r[k] for r in rows) for k in ("producer", "sender", "database", "receiver")}
            print(
                f"  {label:8s} producer {mean['producer']:.3f}  worker {mean['sender']:.3f}  "
                f"database {mean['database']:.3f}  receiver {mean['receiver']:.3f}  total {sum(mean.values()):.3f}"
            )
        print(
            f"failure run: {faulty['total']} events, {args.fail_share:.0%} failed {FAIL_FIRST} times first: "
            f"all acknowledged after {faulty_wall:.1f}s "
            f"({faulty['rate']:.1f} deliveries/s including the retries' waits)"
        )
        goal_met = ratio >= GOAL
        print(f"GOAL pipeline/bare >= {GOAL}: {'MET' if goal_met else 'MISSED'} ({ratio:.2f})")
        for name, ok, detail in checks:
            print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
        failed = not all(ok for _, ok, _ in checks)
        print(f"(total {time.monotonic() - t_start:.1f}s" + (f"; logs in {logdir})" if failed or args.keep else ")"))
        return 1 if failed or (args.strict and not goal_met) else 0
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"FAIL bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(procs):
            proc.stop()
        if failed:
            for proc in procs:
                tail = proc.log.read_text(errors="replace")[-2500:] if proc.log.exists() else ""
                print(f"--- last lines of {proc.log}:\n{tail}", file=sys.stderr)
        if not args.keep:
            admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            broker.flushdb()
            if not failed:
                for f in logdir.iterdir():
                    f.unlink()
                logdir.rmdir()
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
