"""What the import contracts (.importlinter, run by `make test`) cannot say alone.

import-linter sees an external package whole, so its Twilio contract lets the modules
that build TwiML import `twilio` at all. This test narrows that to `twilio.twiml`: only
connectors/twilio.py may use Twilio's REST client, request validator or HTTP layer."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["core", "config", "tenants", "connectors", "payments", "simulators"]


def _twilio_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return [name for name in names if name == "twilio" or name.startswith("twilio.")]


def test_outside_connectors_twilio_only_twiml_is_imported_from_the_twilio_sdk():
    offending = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "connectors" / "twilio.py":
                continue
            bad = [name for name in _twilio_imports(path) if not name.startswith("twilio.twiml")]
            if bad:
                offending[str(path.relative_to(ROOT))] = bad
    assert offending == {}


def test_the_check_sees_a_rest_client_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from twilio.rest import Client\nfrom twilio.twiml.voice_response import VoiceResponse\n")
    assert _twilio_imports(module) == ["twilio.rest", "twilio.twiml.voice_response"]
