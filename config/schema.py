"""The error responses of the OpenAPI document, written once.

`document_errors` (a drf-spectacular postprocessing hook) adds to every operation under
/api/ the errors any operation can give, each with the error envelope as its schema:

| status | when | on |
|---|---|---|
| 400 | invalid input (`fields` names each invalid one), a NUL in the query | every operation |
| 401 | no API key, or an unknown or revoked one | every operation |
| 403 | the key lacks the scope; the tenant is suspended | every operation |
| 404 | no such object in the caller's tenant (another tenant's too), a malformed id | operations with path parameters |
| 413 | a body over PAYDESK_API_MAX_BODY_BYTES | POST, PUT, PATCH |
| 415 | a body that is not JSON (Content-Type) | POST, PUT, PATCH |
| 429 | over PAYDESK_API_RATE (per key) or PAYDESK_API_ANON_RATE (per address); `Retry-After` | every operation |

Errors only some operations give (409 conflicts, 402/502/503 from a provider) are
declared where they arise, with
`extend_schema(extensions=can_answer(409, 503))`; the hook turns that into responses.
405 (a method a route does not have) is a reusable response in `components`: no
operation in the document answers it, since it only concerns methods the document
does not list.
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "The error envelope: every error the API gives.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, for programs: invalid, not_authenticated, authentication_failed, "
                    "permission_denied, missing_scope, not_found, method_not_allowed, payload_too_large, "
                    "rate_limited, conflict, provider_unavailable, …",
                },
                "message": {"type": "string", "description": "For people."},
                "fields": {
                    "type": "object",
                    "description": "Each invalid input, by name, with what is wrong with it (empty otherwise).",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}

_INVALID = {
    "call_sid": ["Enter the Call SID: CA followed by 32 hexadecimal characters."],
    "charge_amount": ["'١٢.٥٠' is not a decimal amount such as 12.50 (ASCII digits and a point)."],
}
# status: (component name, description, headers, example (code, message, fields))
RESPONSES = {
    400: (
        "BadRequest",
        "Invalid input: `fields` names every invalid field, parameter or header.",
        None,
        ("invalid", "Invalid input: call_sid, charge_amount.", _INVALID),
    ),
    401: (
        "Unauthorized",
        "No API key, or an unknown or revoked one.",
        None,
        ("authentication_failed", "Invalid API key.", {}),
    ),
    403: (
        "Forbidden",
        "The API key lacks the scope this operation needs, or the tenant is suspended.",
        None,
        ("missing_scope", "This API key lacks the 'payments:write' scope.", {}),
    ),
    402: (
        "PaymentRequired",
        "Stripe refused to move the money (e.g. a refund the card network declined); its message says why.",
        None,
        ("stripe_card_error", "Stripe: The refund was declined.", {}),
    ),
    404: (
        "NotFound",
        "No such object in the caller's tenant (another tenant's objects included).",
        None,
        ("not_found", "Not found.", {}),
    ),
    405: (
        "MethodNotAllowed",
        "The route exists but not with this method (see the `Allow` header).",
        None,
        ("method_not_allowed", 'Method "DELETE" not allowed.', {}),
    ),
    409: (
        "Conflict",
        "The object's state, or an earlier request with this Idempotency-Key, forbids it.",
        None,
        ("idempotency_key_reused", "This Idempotency-Key was already used with a different request.", {}),
    ),
    413: (
        "PayloadTooLarge",
        "The request body is larger than PAYDESK_API_MAX_BODY_BYTES.",
        None,
        ("payload_too_large", "The request body is 2000000 bytes; at most 1048576 are accepted.", {}),
    ),
    415: (
        "UnsupportedMediaType",
        "The request body is not JSON (`Content-Type: application/json`).",
        None,
        ("unsupported_media_type", 'Unsupported media type "text/plain" in request.', {}),
    ),
    429: (
        "TooManyRequests",
        "Over the rate limit (per API key, or per address without one).",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}},
        ("rate_limited", "Too many requests; retry in 12 s.", {}),
    ),
    502: (
        "BadGateway",
        "The provider (Twilio or Stripe) refused the request.",
        None,
        ("twilio_20404", "Twilio: The requested resource was not found", {}),
    ),
    503: (
        "ServiceUnavailable",
        "The provider could not be reached; nothing was lost and a retry is safe.",
        None,
        ("provider_unavailable", "Twilio did not answer. Nothing was lost: the request can be retried safely.", {}),
    ),
}
EVERYWHERE = (400, 401, 403, 429)
WITH_PATH_PARAMETERS = (404,)
WITH_BODY = (413, 415)
BODY_METHODS = {"post", "put", "patch"}
EXTENSION = "x-paydesk-errors"


def can_answer(*statuses: int) -> dict:
    """`extend_schema(extensions=can_answer(409, 503))`: errors this operation can give
    beyond those every operation can (see the module docstring)."""
    unknown = set(statuses) - set(RESPONSES)
    if unknown:
        raise ValueError(f"No documented error response for {sorted(unknown)}.")
    return {EXTENSION: sorted(statuses)}


def document_errors(result, generator, request, public):
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    shared = components.setdefault("responses", {})
    for name, description, headers, (code, message, fields) in RESPONSES.values():
        example = {"error": {"code": code, "message": message, "fields": fields}}
        shared[name] = {
            "description": description,
            "content": {"application/json": {"schema": _ERROR_REF, "example": example}},
        }
        if headers:
            shared[name]["headers"] = headers
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = set(EVERYWHERE) | set(operation.pop(EXTENSION, ()))
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses.update(WITH_PATH_PARAMETERS)
            if method in BODY_METHODS:
                statuses.update(WITH_BODY)
            for status in sorted(statuses):
                operation["responses"].setdefault(
                    str(status), {"$ref": f"#/components/responses/{RESPONSES[status][0]}"}
                )
    return result
