"""Logging with a redaction filter on every handler.

Any value whose key looks secret is replaced, and any Luhn-valid card number that slips
into a message is masked: logs never carry secrets or card data.
"""

import logging
import re

SECRET_KEY_PATTERN = re.compile(r"API|TOKEN|KEY|SECRET|PASS|SIGNATURE|AUTHORIZATION", re.IGNORECASE)
# key=value / "key": "value" pairs whose key looks secret
_PAIR = re.compile(
    r"""(?P<key>[\w-]*(?:api|token|key|secret|pass|signature|authorization)[\w-]*)(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^\s"',&}]+)""",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    from core.cardsafe import mask_card_numbers

    text = _PAIR.sub(lambda m: f"{m['key']}{m['sep']}[redacted]", text)
    return mask_card_numbers(text)[0]


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def logging_config(*, level: str) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "config.logging.RedactingFilter"}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        },
        "root": {"handlers": ["console"], "level": level},
        # Django's own default sends `django` records to a console handler of its own as
        # well, so each 4xx/5xx would be printed twice; here they reach the root's only.
        "loggers": {"django": {"handlers": [], "level": level, "propagate": True}},
    }
