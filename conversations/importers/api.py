"""The API source: an Assistants-compatible server reached through the official SDK.

The SDK still carries `client.beta.assistants` / `threads`, but marks every method
deprecated (the hosted API was sunset). The endpoints are the same, so they are called
through the client's own generic request method, `client.get(path, cast_to=object)`:
the same base URL, auth, timeout and retries, including waiting out a 429's
`Retry-After`, with no deprecation warnings and the JSON exactly as the spec shapes it,
which is what the export-file source reads too.

Lists are paged as the spec describes: `order=asc`, `limit=100`, and `after=<last_id>`
while `has_more`. A thread imported before is fetched from its stored cursor, so a
re-run asks only for newer messages. With run steps on, each run that wrote a fetched
message is fetched too (`/threads/{id}/runs/{run_id}`) and becomes an imported turn,
as in an export; a run that wrote nothing is only in an export. The methods here do no database work: they run on
worker threads while the main thread writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import openai
from openai import OpenAI

from conversations.importers.assistants_format import thread_fill
from conversations.importers.models import ImportSource
from conversations.importers.records import Problem, ThreadRecord, from_timestamp

PAGE_SIZE = 100


class SourceError(Exception):
    """A request the SDK gave up on (after its retries), as a reportable reason."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, openai.NotFoundError):
        return "not found (404): deleted, or never existed"
    if isinstance(exc, openai.RateLimitError):
        return "rate limited (429) after all retries; re-run to continue"
    if isinstance(exc, openai.APIStatusError):
        return f"the API answered {exc.status_code}: {exc.message}"
    if isinstance(exc, openai.APITimeoutError):
        return "the API timed out after all retries"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach the API: {exc}"
    return f"{type(exc).__name__}: {exc}"


class AssistantsApi:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        max_retries: int = 5,
        timeout: float = 60.0,
        run_steps: bool = False,
    ) -> None:
        self.base_url = base_url
        self.run_steps = run_steps
        self.client = OpenAI(
            base_url=base_url,
            api_key=api_key,
            max_retries=max_retries,
            timeout=timeout,
            default_headers={"OpenAI-Beta": "assistants=v2"},
        )

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            body = self.client.get(
                path, cast_to=object, options={"params": params or {}, "security": {"bearer_auth": True}}
            )
        except openai.OpenAIError as exc:
            raise SourceError(_reason(exc)) from exc
        if not isinstance(body, dict):
            raise SourceError(f"{path} did not answer a JSON object")
        return body

    def _pages(self, path: str, after: str = "") -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, oldest first, following `has_more`/`last_id`."""
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE, "order": "asc"}
            if after:
                params["after"] = after
            page = self._get(path, params)
            data = page.get("data")
            if not isinstance(data, list):
                raise SourceError(f"{path} did not answer a list")
            yield from data
            following = page.get("last_id") or (data[-1].get("id") if data else None)
            if not page.get("has_more") or not data or not following or following == after:
                return
            after = following

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        return self._get(f"/assistants/{quote(assistant_id, safe='')}")

    def thread(self, thread_id: str, cursor: str = "") -> ThreadRecord | Problem:
        """The thread's messages after `cursor` (all when empty), with their runs' tool
        calls when run steps are enabled; a Problem instead when it cannot be read."""
        path = f"/threads/{quote(thread_id, safe='')}"
        try:
            thread = self._get(path)
            record = ThreadRecord(
                source=ImportSource.ASSISTANTS,
                external_id=thread_id,
                metadata=dict(thread.get("metadata") or {}),
                created_at=from_timestamp(thread.get("created_at")),
                origin=self.base_url,
            )
            messages = list(self._pages(f"{path}/messages", after=cursor))
            steps: dict[str, list[dict[str, Any]]] = {}
            runs: list[dict[str, Any]] = []
            if self.run_steps:
                for run_id in dict.fromkeys(m["run_id"] for m in messages if m.get("run_id")):
                    run_path = f"{path}/runs/{quote(run_id, safe='')}"
                    try:
                        runs.append(self._get(run_path))
                    except SourceError as exc:
                        if not isinstance(exc.__cause__, openai.NotFoundError):
                            raise
                        record.notes["runs not found (404)"] += 1
                    try:
                        steps[run_id] = list(self._pages(f"{run_path}/steps"))
                    except SourceError as exc:
                        if not isinstance(exc.__cause__, openai.NotFoundError):
                            raise
                        record.notes["runs whose steps were not found (404)"] += 1
            thread_fill(record, messages, steps, runs)
        except SourceError as exc:
            return Problem("thread", thread_id, str(exc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return Problem("thread", thread_id, f"unexpected response shape: {exc!r}")
        return record
