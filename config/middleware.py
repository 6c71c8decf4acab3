"""Limits on what an API request may carry, checked before any view reads it.

- A body over PAYDESK_API_MAX_BODY_BYTES answers 413 `payload_too_large`, from its
  Content-Length, before a byte of it is read.
- A NUL character in a query parameter answers 400: PostgreSQL stores no NUL in text,
  so it would otherwise fail in the database, wherever the parameter ends up.

Both answer the API's error envelope (config/api.py). Only paths under /api/ are
concerned: the providers' callbacks have their own answers (docs/twilio-pay.md,
docs/stripe.md).
"""

from django.conf import settings
from django.http import JsonResponse

from config.api import error_body, is_api_path


class ApiInputLimits:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_path(request.path_info):
            refusal = _too_large(request) or _nul_in_query(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)


def _too_large(request) -> JsonResponse | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.PAYDESK_API_MAX_BODY_BYTES
    if length <= limit:
        return None
    message = f"The request body is {length} bytes; at most {limit} are accepted."
    return JsonResponse(error_body(code="payload_too_large", message=message), status=413)


def _nul_in_query(request) -> JsonResponse | None:
    bad = sorted(
        {
            name.replace("\x00", "\\u0000")
            for name, values in request.GET.lists()
            for value in [name, *values]
            if "\x00" in value
        }
    )
    if not bad:
        return None
    fields = {name: ["May not contain the NUL character (%00)."] for name in bad}
    message = "Invalid input: " + ", ".join(bad) + "."
    return JsonResponse(error_body(code="invalid", message=message, fields=fields), status=400)
