import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from config.wsgi import application

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 12,
        "generation": {"max-examples": 5},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


@pytest.fixture
def in_test_transaction():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_api_answers_as_documented(case, world, in_test_transaction):
    case.call_and_validate(headers={"Authorization": f"Bearer {world.acme.raw_key}"})
