"""`manage.py import_conversations`: bring Assistants threads and chat histories in.

From files (Assistants exports, Chat Completions JSONL):
    manage.py import_conversations exports/ chats.jsonl --mapping customers.csv
From an Assistants-compatible API (threads listed in the mapping file):
    manage.py import_conversations --api-base-url https://api.example.com/v1 \\
        --assistant asst_123 --mapping customers.csv --run-steps

Safe to re-run: nothing is imported twice and updated threads bring only their new
messages. The JSON report goes to stdout (or --report FILE); a progress bar is drawn on
stderr when it is a terminal.
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.errors import NotFound
from conversations.importers.api import AssistantsApi
from conversations.importers.mapping import customer_map_read
from conversations.importers.report import Progress, plural
from conversations.importers.service import (
    ImportOptions,
    conversations_import_api,
    conversations_import_files,
)


class Command(BaseCommand):
    help = "Import Assistants API threads (API or export files) and Chat Completions histories."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="Export files or directories (.json, .jsonl).")
        parser.add_argument("--api-base-url", help="Import from this Assistants-compatible API instead of files.")
        parser.add_argument(
            "--api-key-env", default="OPENAI_API_KEY", help="Environment variable holding the API key."
        )
        parser.add_argument("--assistant", action="append", default=[], help="Assistant id to import (repeat).")
        parser.add_argument("--mapping", help="Customer -> thread mapping file (CSV, JSON or JSONL).")
        parser.add_argument("--run-steps", action="store_true", help="Recover tool calls from run steps.")
        parser.add_argument("--concurrency", type=int, default=4, help="Threads fetched at once (API).")
        parser.add_argument(
            "--writers", type=int, default=1,
            help="Conversations written at once (files). 2-4 helps on PostgreSQL; keep 1 on SQLite.",
        )
        parser.add_argument("--max-retries", type=int, default=5, help="SDK retries per request (API).")
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds per request (API).")
        parser.add_argument("--agent", default="", help="Agent for threads whose assistant was not imported.")
        parser.add_argument(
            "--api-client", default="",
            help="API client (by name) that will own the imported conversations, so its keys can read them "
            "and customers it identifies resume them (an api_client mapping column overrides it).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; write nothing.")
        parser.add_argument("--report", help="Write the JSON report here instead of stdout.")
        parser.add_argument("--no-progress", action="store_true", help="Never draw the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        customers = None
        if options["mapping"]:
            try:
                customers = customer_map_read(options["mapping"])
            except OSError as exc:
                raise CommandError(f"Cannot read the mapping file: {exc}")
        settings = ImportOptions(
            dry_run=options["dry_run"],
            agent_name=options["agent"],
            customers=customers,
            concurrency=options["concurrency"],
            writers=options["writers"],
            progress=Progress(cast(TextIO, self.stderr._out), enabled=False if options["no_progress"] else None),
            api_client=options["api_client"],
        )
        if options["api_base_url"] and options["paths"]:
            raise CommandError("Give export files or --api-base-url, not both.")
        if options["assistant"] and not options["api_base_url"]:
            raise CommandError("--assistant ids are fetched from --api-base-url; exports carry their assistants.")
        if options["api_base_url"]:
            if customers is None and not options["assistant"]:
                raise CommandError("Give --mapping (the threads to import) and/or --assistant ids.")
            api_key = os.environ.get(options["api_key_env"], "")
            if not api_key:
                raise CommandError(f"Set {options['api_key_env']} to the API key (or name another with --api-key-env).")
            api = AssistantsApi(
                base_url=options["api_base_url"],
                api_key=api_key,
                max_retries=options["max_retries"],
                timeout=options["timeout"],
                run_steps=options["run_steps"],
            )
            try:
                report = conversations_import_api(api=api, assistant_ids=options["assistant"], options=settings)
            except NotFound as exc:
                raise CommandError(exc.message)
            finally:
                api.close()
        else:
            if not options["paths"]:
                raise CommandError("Give export files or directories, or --api-base-url.")
            try:
                report = conversations_import_files(paths=options["paths"], options=settings)
            except NotFound as exc:
                raise CommandError(exc.message)
        body = json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str)
        if options["report"]:
            with open(options["report"], "w", encoding="utf-8") as handle:
                handle.write(body + "\n")
        else:
            self.stdout.write(body)
        summary = report.as_dict()["summary"]
        self.stderr.write(
            ("Dry run: " if report.dry_run else "")
            + f"{plural(summary['conversations_created'], 'conversation')} created, "
            f"{summary['conversations_updated']} updated, {plural(summary['messages_imported'], 'message')}, "
            f"{summary['skipped']} skipped, {summary['failed']} failed in {report.seconds:.1f}s."
        )
        if report.interrupted:
            raise CommandError("Interrupted; whole conversations were kept. Re-run to continue.")
