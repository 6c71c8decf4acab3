"""What the API's rate limit costs a request: `GET /api/v1/tenant/` with an API key, with
the per-key limit on (PAYDESK_API_RATE, DRF's throttle in Redis) and off, side by side.

    .venv/bin/python bench/api_limits.py [--requests 300] [--rounds 5] [--rate 1200/min]

In-process (Django's test client, no web server), on a fresh test database
(`test_paydesk_bench_limits`, created, migrated and dropped) and Redis db 13. The limit's
history is emptied before each limited segment, so a segment of N requests carries 1 to N
timestamps, as a key making N requests a minute would. Prints the median time per
request of each and their ratio (limited / unlimited); round 0 is a warm-up.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", default="1200/min")
    args = parser.parse_args()

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/paydesk_bench_limits",
        REDIS_URL="redis://127.0.0.1:6379/13",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from tenants.models import Scope, Tenant
    from tenants.services import Actor, api_key_create

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        tenant = Tenant.objects.create(slug="bench", name="Bench", twilio_account_sid="AC" + "0" * 32)
        key, raw = api_key_create(tenant=tenant, name="bench", scopes=list(Scope.values), actor=Actor.system("bench"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        history_key = f"throttle_api_key_{key.pk}"

        def segment(rate) -> float:
            settings.PAYDESK_API_RATE = rate
            cache.delete(history_key)
            start = time.perf_counter()
            for _ in range(args.requests):
                assert client.get("/api/v1/tenant/").status_code == 200
            return (time.perf_counter() - start) / args.requests * 1e6

        results: dict[str, list[float]] = {"limited": [], "unlimited": []}
        for round_no in range(args.rounds + 1):
            limited, unlimited = segment(args.rate), segment(None)
            if round_no:  # round 0 warms up
                results["limited"].append(limited)
                results["unlimited"].append(unlimited)
        limited, unlimited = (statistics.median(results[k]) for k in ("limited", "unlimited"))
        print(f"GET /api/v1/tenant/, {args.requests} requests x {args.rounds} rounds, median per request:")
        print(f"  rate limit {args.rate:>10}: {limited:8.0f} us")
        print(f"  no rate limit      : {unlimited:8.0f} us")
        print(f"  ratio limited/unlimited: {limited / unlimited:.2f}")
    finally:
        cache.clear()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
