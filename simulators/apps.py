from django.apps import AppConfig


class SimulatorsConfig(AppConfig):
    """Development and test tooling, installed so that its commands exist: `seed_demo`,
    `simulate_payment`, `simulate_ivr_call`. Each refuses to run with DEBUG off unless
    pointed at a simulator explicitly. No models. Product code never imports this package
    (an import-linter contract, see docs/architecture.md)."""

    name = "simulators"
