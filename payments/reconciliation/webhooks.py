"""The endpoint Stripe calls: one URL per connector instance, verified with that
connector's signing secret before anything is stored; stored, answered at once, and
applied by a task. A duplicate answers with what the first delivery stored."""

import logging

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors import stripe as edge
from payments.reconciliation import selectors, services

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest, connector_id) -> JsonResponse:
    connector = selectors.connector_for_webhook(uuid=connector_id)
    if connector is None:
        return JsonResponse({"error": "unknown endpoint"}, status=404)
    try:
        event, created = services.stripe_webhook_record(
            connector=connector, payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except edge.SignatureInvalid as exc:
        logger.warning("stripe event for connector %s refused: %s", connector.pk, exc.message)
        return JsonResponse({"error": "invalid signature"}, status=400)
    except ValidationError as exc:
        return JsonResponse({"error": "; ".join(exc.messages)}, status=400)
    return JsonResponse({"received": True, "duplicate": not created, "status": event.outcome})
