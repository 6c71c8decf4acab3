"""Endpoints Twilio calls. Every request is checked against X-Twilio-Signature with the
tenant's auth token before anything is stored; then it is stored and answered at once,
and applied by a Celery task."""

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors import twilio as twilio_edge
from payments.sessions import selectors, services
from tenants import crypto

logger = logging.getLogger(__name__)


def twilio_signature_ok(request: HttpRequest, *, auth_token_ciphertext: str) -> bool:
    """`auth_token_ciphertext`: the tenant's Twilio auth token as stored."""
    # Twilio signs the URL it called. Behind a proxy, request.build_absolute_uri() would
    # see the internal scheme and host, so the public base URL is used instead.
    url = settings.PAYDESK_PUBLIC_BASE_URL + request.get_full_path()
    return twilio_edge.signature_is_valid(
        auth_token=crypto.decrypt(auth_token_ciphertext),
        url=url,
        params=request.POST,
        signature=request.headers.get("X-Twilio-Signature", ""),
    )


@csrf_exempt
@require_POST
def pay_status_callback(request: HttpRequest, token: str) -> HttpResponse:
    target = selectors.pay_session_for_callback(token=token)
    if target is None:
        return HttpResponse(status=404)
    if not twilio_signature_ok(request, auth_token_ciphertext=target.twilio_auth_token_ciphertext):
        logger.warning("pay callback for session %s refused: bad signature", target.session_uuid)
        return HttpResponse("Invalid Twilio signature.", status=403, content_type="text/plain")
    if request.POST.get("AccountSid") not in ("", None, target.twilio_account_sid):
        return HttpResponse("Wrong account.", status=403, content_type="text/plain")
    services.pay_callback_record(
        tenant_id=target.tenant_id, session_id=target.session_id, raw_params=request.POST.dict()
    )
    return HttpResponse(status=204)


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness, and the benchmark's baseline view: no database, no work."""
    return HttpResponse("ok", content_type="text/plain")
