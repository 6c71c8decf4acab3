"""REST API plumbing shared by every app: one error envelope, a bounded JSON parser,
cursor pagination, and the JSON answers for routes that do not exist and for a 500.

Every error answers `{"error": {"code": "...", "message": "...", "fields": {...}}}`,
including those given outside DRF (config/middleware.py, the 404 and 500 handlers).
"""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import Http404, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, negotiation, pagination, parsers, serializers
from rest_framework.fields import SkipField, empty
from rest_framework.response import Response

from config.errors import Conflict, ServiceError
from core import safejson

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


def error_body(*, code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


@csrf_exempt
def api_not_found(request):
    """The last route under /api/: what no other route takes answers the JSON 404, with
    DEBUG on or off, for any method. (So Django's APPEND_SLASH redirect, which loses a
    POST's body, does not happen under /api/: the answer names the route instead.)"""
    path = request.path_info
    message = f"No API route {path!r}; see /api/docs/."
    if not path.endswith("/"):
        try:
            if resolve(path + "/").func is not api_not_found:
                message = f"No API route {path!r}; did you mean {path + '/'!r}?"
        except Resolver404:
            pass
    return JsonResponse(error_body(code="not_found", message=message), status=404)


def server_error(request):
    """handler500: under /api/ the JSON envelope, elsewhere Django's page."""
    if is_api_path(request.path_info):
        return JsonResponse(error_body(code="server_error", message="Internal server error."), status=500)
    return defaults.server_error(request)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, bounded: nesting deeper than core.safejson.MAX_DEPTH, a NUL
    character or a lone surrogate in any string is a 400, before any code walks it."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return safejson.loads(stream.read() if stream is not None else b"")
        except safejson.UnsafeJSON as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


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


class JSONOnlyNegotiation(negotiation.DefaultContentNegotiation):
    """The API speaks JSON only, so it answers JSON whatever `Accept` or `?format=` ask
    for, instead of DRF's 406 (or 404 for an unknown format). Request bodies are still
    matched to a parser: another Content-Type than JSON answers 415."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class EveryErrorAtOnce:
    """A Serializer mixin: one answer names every invalid field.

    DRF runs `validate()` (the rules across fields) only when every field is valid, so a
    caller fixing one error meets the next. Here `validate()` also runs when some fields
    are invalid, on the valid ones, and its errors are added for fields without one.
    `validate()` therefore reads attrs with .get(), skips a rule whose inputs are in
    `self.invalid_fields`, and builds nothing while that set is not empty.
    """

    invalid_fields: frozenset = frozenset()

    def run_validation(self, data=empty):
        is_empty, data = self.validate_empty_values(data)
        if is_empty:
            return data
        try:
            value = self.to_internal_value(data)
            errors = {}
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict) or set(exc.detail) <= {"non_field_errors"}:
                raise
            errors = dict(exc.detail)
            value = self._valid_part(data)
        self.invalid_fields = frozenset(errors)
        try:
            self.run_validators(value)
            value = self.validate(value)
        except (serializers.ValidationError, DjangoValidationError) as exc:
            for name, messages in serializers.as_serializer_error(exc).items():
                errors.setdefault(name, messages)
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _valid_part(self, data) -> dict:
        valid = {}
        for field in self._writable_fields:
            check = getattr(self, "validate_" + field.field_name, None)
            try:
                value = field.run_validation(field.get_value(data))
                value = check(value) if check else value
            except (serializers.ValidationError, DjangoValidationError, SkipField):
                continue
            self.set_value(valid, field.source_attrs, value)
        return valid


def exception_handler(exc, context) -> Response:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
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
    if isinstance(exc, exceptions.Throttled):
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait or 1)))

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
    if code == "throttled":  # DRF's own Throttled (tenants.auth.RateLimited says it already)
        code = "rate_limited"
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

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot read with 404; it is bad input, so 400 naming it.
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
