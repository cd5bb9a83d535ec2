"""The customer mapping file: which customer each thread (or chat conversation) belongs to.

The Assistants API cannot list threads, so for the API source this file is also the list
of threads to fetch. Accepted shapes:
- CSV with a header naming `customer_id` and `thread_id` (or `conversation_id`), and
  optionally `customer_email`, `customer_name` and `api_client` (the API client, by
  name, that will own the conversation); or two columns, customer then thread, without
  a header;
- JSON: an object {customer id: thread id or [thread ids]}, or a list of row objects;
- JSONL: one row object per line.
Bad rows are reported with their line number and skipped; a thread claimed by two
customers keeps the first and the second is reported.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conversations.importers.records import Customer, Problem


@dataclass
class CustomerMap:
    customers: dict[str, Customer] = field(default_factory=dict)  # thread id -> customer
    problems: list[Problem] = field(default_factory=list)

    def add(self, row: dict[str, Any], line: int | None, file: str) -> None:
        customer_id = _text(row.get("customer_id"))
        thread_id = _text(row.get("thread_id") or row.get("conversation_id"))
        if not customer_id or not thread_id or len(thread_id) > 255:
            self.problems.append(
                Problem("mapping", thread_id[:255] or customer_id or "?",
                        "needs a customer_id and a thread_id (at most 255 characters)", line, file)
            )
            return
        if thread_id in self.customers:
            if self.customers[thread_id].customer_id != customer_id:
                self.problems.append(
                    Problem(
                        "mapping", thread_id,
                        f"thread already mapped to customer {self.customers[thread_id].customer_id!r}; "
                        f"{customer_id!r} ignored", line, file,
                    )
                )
            return
        self.customers[thread_id] = Customer(
            customer_id=customer_id[:255],
            email=_text(row.get("customer_email") or row.get("email"))[:254],
            name=_text(row.get("customer_name") or row.get("name"))[:200],
            api_client=_text(row.get("api_client"))[:120],
        )


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list | bool):
        return ""
    return str(value).strip()


def customer_map_read(path: str | Path) -> CustomerMap:
    """Read a mapping file (see the module docstring); never raises on bad rows."""
    path = Path(path)
    result = CustomerMap()
    raw = path.read_text(encoding="utf-8-sig")
    name = path.name
    stripped = raw.lstrip()
    if path.suffix == ".jsonl":
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                result.problems.append(Problem("mapping", "?", f"invalid JSON: {exc.msg}", number, name))
                continue
            result.add(row if isinstance(row, dict) else {}, number, name)
    elif stripped.startswith(("{", "[")):
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            result.problems.append(Problem("mapping", "?", f"invalid JSON: {exc.msg}", exc.lineno, name))
            return result
        if isinstance(document, dict):
            for customer_id, threads in document.items():
                for thread_id in threads if isinstance(threads, list) else [threads]:
                    result.add({"customer_id": customer_id, "thread_id": thread_id}, None, name)
        else:
            for row in document:
                result.add(row if isinstance(row, dict) else {}, None, name)
    else:
        rows = list(csv.reader(io.StringIO(raw)))
        header = [cell.strip().lower() for cell in rows[0]] if rows else []
        has_header = "customer_id" in header
        columns = header if has_header else ["customer_id", "thread_id"]
        for number, cells in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
            if not any(cell.strip() for cell in cells):
                continue
            result.add(dict(zip(columns, cells, strict=False)), number, name)
    return result
