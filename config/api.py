"""REST API plumbing shared by every app: one error envelope and cursor pagination.

Every error answers `{"error": {"code": "...", "message": "...", "fields": {...}}}`.
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, pagination
from rest_framework.response import Response

from config.errors import Conflict, ServiceError

logger = logging.getLogger(__name__)


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [f"{key}: {msg}" for key, value in detail.items() for msg in _flatten(value)]
    if isinstance(detail, list | tuple):
        return [msg for item in detail for msg in _flatten(item)]
    return [str(detail)]


def _fields_from(detail) -> dict[str, list[str]]:
    if not isinstance(detail, dict):
        return {}
    return {str(key): _flatten(value) for key, value in detail.items() if key != "non_field_errors"}


def envelope(*, code: str, message: str, fields: dict | None = None, status_code: int, headers=None) -> Response:
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return Response(body, status=status_code, headers=headers)


def exception_handler(exc, context) -> Response:
    if isinstance(exc, ProtectedError):
        exc = Conflict("The object is still referenced by other records and cannot be deleted.", code="in_use")
    if isinstance(exc, ServiceError):
        return envelope(code=exc.code, message=exc.message, fields=exc.fields, status_code=exc.status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled API error in %s", context.get("view").__class__.__name__)
        return envelope(code="server_error", message="Internal server error.", status_code=500)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        fields = _fields_from(exc.detail)
        non_field = exc.detail.get("non_field_errors") if isinstance(exc.detail, dict) else exc.detail
        if non_field:
            message = "; ".join(_flatten(non_field))
        else:
            message = "Invalid input: " + ", ".join(fields) + "." if fields else "Invalid input."
        return envelope(code="invalid", message=message, fields=fields, status_code=exc.status_code)

    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
    message = "; ".join(_flatten(exc.detail))
    return envelope(
        code=code,
        message=message,
        fields=getattr(exc, "fields", None),
        status_code=exc.status_code,
        headers=headers or None,
    )


class CursorPagination(pagination.CursorPagination):
    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 200
