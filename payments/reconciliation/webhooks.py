"""The endpoint Stripe calls: one URL per connector instance, verified with that
connector's signing secret before anything is stored; stored, answered at once, and
applied by a task. A duplicate answers with what the first delivery stored."""

import logging

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.api import error_body
from connectors import stripe as edge
from payments.reconciliation import selectors, services

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, connector_id) -> JsonResponse:
    connector = selectors.connector_for_webhook(uuid=connector_id)
    if connector is None:
        return _refusal(404, "not_found", "Unknown webhook endpoint.")
    try:
        event, created = services.stripe_webhook_record(
            connector=connector, payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except edge.SignatureInvalid as exc:
        logger.warning("stripe event for connector %s refused: %s", connector.pk, exc.message)
        return _refusal(400, "invalid_signature", "Invalid Stripe-Signature.")
    except services.MalformedEvent as exc:
        return _refusal(400, "malformed_event", "; ".join(exc.messages))
    except ValidationError as exc:
        return _refusal(400, "invalid", "; ".join(exc.messages))
    return JsonResponse({"received": True, "duplicate": not created, "status": event.outcome})


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    """The API's error envelope (config/api.py), which Stripe shows in its delivery log."""
    return JsonResponse(error_body(code=code, message=message), status=status)
