"""What every provider edge (Twilio, Stripe) raises."""


class ConnectorError(Exception):
    """A provider refused or failed.

    `permanent=True`: retrying cannot help (bad credentials, invalid request); record it.
    `permanent=False`: transient (network, 429, 5xx); Celery retries with backoff.
    `code` is the provider's error code when it gave one (Twilio 64xxx, Stripe's `code`).
    """

    def __init__(self, message: str, *, permanent: bool, code: str | int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.status = status
