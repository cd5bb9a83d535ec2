"""`manage.py api_key_create`: issue an API key from the command line (shown once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.api.keys import api_key_create
from conversations.api.models import ApiClient, Scope
from conversations.errors import PlatformError


class Command(BaseCommand):
    help = "Create an API key for an API client (created if missing) and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", required=True, help="API client (integration) name.")
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument(
            "--scope", action="append", dest="scopes", choices=Scope.values,
            help="Repeat for several scopes (default: read and write).",
        )
        parser.add_argument("--rate", default="", help="Rate limit such as 600/min (default: the deployment's).")
        parser.add_argument("--quiet", action="store_true", help="Print only the key.")

    def handle(self, *args: Any, **options: Any) -> None:
        client, _ = ApiClient.objects.get_or_create(name=options["client"])
        try:
            key, raw = api_key_create(
                client=client, name=options["name"], scopes=options["scopes"] or [Scope.READ, Scope.WRITE],
                rate_limit=options["rate"],
            )
        except PlatformError as exc:
            raise CommandError(exc.message) from None
        if options["quiet"]:
            self.stdout.write(raw)
            return
        self.stdout.write(f"API key for {client.name} / {key.name} (scopes: {', '.join(key.scopes)}):")
        self.stdout.write(self.style.SUCCESS(raw))
        self.stdout.write("Shown once: only its digest is stored. Revoke it in the admin.")
