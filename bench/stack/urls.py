"""Paydesk's URLs plus two bench-only views: the store-only floor, and an SSE stream.

`POST /bench/store-only/` does the least any callback endpoint must do when it keeps a
payment result durably before answering: parse the form, commit one row, answer 204. No
lookup, no signature check, no wake-up, nothing for Celery. Measured beside /healthz and
the real callback endpoint, it shows how much of the gap to /healthz no design of the
endpoint can close on the machine at hand.

`GET /bench/console-sse/<uuid>?seconds=N` is what a Server-Sent Events console would do
instead of polls (bench/console.py): hold the response open for N seconds and push the
session's state version whenever it changes, looked at every 100 ms. No login: bench only.
"""

import time

from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
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


def console_sse(request: HttpRequest, uuid) -> StreamingHttpResponse:
    from payments.console.selectors import console_session_version
    from payments.sessions.models import PaySession

    seconds = float(request.GET.get("seconds", "3"))

    def events():
        end, shown = time.monotonic() + seconds, None
        while time.monotonic() < end:
            session = PaySession.objects.select_related("tenant").get(uuid=uuid)
            version = console_session_version(session=session)
            if version != shown:
                shown = version
                yield f"data: {version}\n\n".encode()
            time.sleep(0.1)

    return StreamingHttpResponse(events(), content_type="text/event-stream")


urlpatterns = [
    path(STORE_ONLY_PATH.removeprefix("/"), store_only),
    path("bench/console-sse/<uuid:uuid>", console_sse),
    *paydesk_urlpatterns,
]
