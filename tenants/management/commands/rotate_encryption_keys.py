from tenants.management.cli import OperatorCommand
from tenants.services import Actor, encryption_keys_rotate


class Command(OperatorCommand):
    help = (
        "Re-encrypt every stored secret under the newest key in PAYDESK_ENCRYPTION_KEYS. "
        "Put the new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        counts = encryption_keys_rotate(actor=Actor.system("cli"))
        self.emit(
            options,
            {"rotated": counts},
            "\n".join(f"{label}: {n} row(s) re-encrypted" for label, n in counts.items()),
        )
