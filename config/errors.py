"""Domain errors that services raise and the API turns into the error envelope."""


class ServiceError(Exception):
    """A refusal with a stable code, an HTTP status for the API, and optional fields."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.fields = fields or {}
        self.status = status or self.status


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Upstream(ServiceError):
    """A provider refused or failed. Transient ones (`retryable`) answer 503."""

    status = 502
    code = "provider_error"
