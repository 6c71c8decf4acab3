"""Paydesk's URLs plus the store-only floor.

`POST /bench/store-only/` does the least any callback endpoint must do when it keeps a
payment result durably before answering: parse the form, commit one row, answer 204. No
lookup, no signature check, no wake-up, nothing for Celery. Measured beside /healthz and
the real callback endpoint, it shows how much of the gap to /healthz no design of the
endpoint can close on the machine at hand.
"""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bench.stack import STORE_ONLY_PATH, STORE_ONLY_TABLE
from config.urls import urlpatterns as paydesk_urlpatterns


@csrf_exempt
@require_POST
def store_only(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:  # autocommit: committed (and flushed) before the 204
        cursor.execute(f"INSERT INTO {STORE_ONLY_TABLE} (body) VALUES (%s)", [request.POST.urlencode()])
    return HttpResponse(status=204)


urlpatterns = [path(STORE_ONLY_PATH.removeprefix("/"), store_only), *paydesk_urlpatterns]
