from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The agent console: web pages where an agent takes a card payment on a call, signed
    in or embedded in a partner's contact-centre software (docs/console.md)."""

    name = "payments.console"
    label = "console"
