"""Shared behaviour of the operator commands: `--json` output and one-line errors."""

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


def one_line(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class OperatorCommand(BaseCommand):
    """A command for provisioning scripts: `--json` prints one JSON object on stdout;
    any bad argument is one line on stderr and a non-zero exit."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")

        def error(message: str):
            raise CommandError(f"{message} (see --help)")

        parser.error = error  # argparse would print the whole usage block; one line is enough
        return parser

    def run_from_argv(self, argv):
        try:
            return super().run_from_argv(argv)
        except CommandError as exc:  # raised by the parser, before execute() handles it
            self.stderr.write(f"CommandError: {exc}")
            sys.exit(2)

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ValidationError as exc:
            raise CommandError(one_line(exc)) from None

    def emit(self, options, payload: dict, text: str) -> None:
        if options["json"]:
            self.stdout.write(json.dumps(payload, default=str, sort_keys=True))
        else:
            self.stdout.write(text)
