"""Running an import: sources in, agents and conversations out, everything reported.

`conversations_import_files` and `conversations_import_api` are the two entry points
(the management command is a thin door onto them). Both import assistants first, then
threads one conversation per transaction (`writer.thread_import`), and return an
`ImportReport`. The API source fetches threads on a bounded pool of worker threads while
the calling thread alone writes to the database, so concurrency never means concurrent
writers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from conversations.errors import NotFound
from conversations.importers.api import AssistantsApi, SourceError
from conversations.importers.assistants_format import assistant_plan
from conversations.importers.files import ThreadLoader, files_read
from conversations.importers.mapping import CustomerMap
from conversations.importers.models import ImportedAssistant, ImportSource
from conversations.importers.records import Customer, Problem, ThreadRecord
from conversations.importers.report import ImportReport, Progress
from conversations.importers.writer import StoredLink, agent_import, stored_links, thread_import
from conversations.models import Agent
from conversations.models.conversation import CustomerKind
from conversations.services.conversations import agent_default
from tools.registry import registry

# Thread metadata keys that commonly carry the customer when no mapping names one.
_CUSTOMER_KEYS = ("customer_id", "user_id", "user")


@dataclass
class ImportOptions:
    dry_run: bool = False
    agent_name: str = ""  # agent for threads whose assistant was not imported
    customers: CustomerMap | None = None
    concurrency: int = 4
    progress: Progress | None = None


class _Importer:
    def __init__(self, report: ImportReport, options: ImportOptions) -> None:
        self.report = report
        self.options = options
        self.progress = options.progress or Progress(enabled=False)
        self._agents: dict[str, Agent | None] = {}
        self._fallback: Agent | None = None
        self._would_create: set[str] = set()
        self._tool_names = set(registry())

    def assistants(self, objects: Iterable[dict[str, Any]]) -> None:
        for obj in objects:
            try:
                plan = assistant_plan(obj, self._tool_names)
            except (ValueError, TypeError, AttributeError) as exc:
                self.report.problem(Problem("assistant", str(obj.get("id", "?")), f"malformed assistant: {exc}"))
                continue
            status, agent = agent_import(plan, dry_run=self.options.dry_run)
            self._agents[plan.assistant_id] = agent
            if agent is None:  # a dry run: its threads would go to the agent it would create
                self._would_create.add(plan.assistant_id)
            self.report.agent(plan, status, agent.pk if agent else None)

    def _agent_for(self, record: ThreadRecord) -> Agent | None:
        if record.assistant_id in self._would_create:
            return None
        if record.assistant_id:
            if record.assistant_id not in self._agents:
                link = ImportedAssistant.objects.select_related("agent").filter(
                    assistant_id=record.assistant_id
                ).first()
                self._agents[record.assistant_id] = link.agent if link else None
            if self._agents[record.assistant_id] is not None:
                return self._agents[record.assistant_id]
        if self._fallback is None:
            if self.options.agent_name:
                self._fallback = Agent.objects.filter(name=self.options.agent_name).first()
                if self._fallback is None:
                    raise NotFound(f"No agent is named {self.options.agent_name!r}.")
            else:
                self._fallback = agent_default()
        return self._fallback

    def _customer_for(self, record: ThreadRecord) -> Customer:
        customers = self.options.customers
        if customers and record.external_id in customers.customers:
            return customers.customers[record.external_id]
        if record.customer:
            return record.customer
        for key in _CUSTOMER_KEYS:
            value = record.metadata.get(key)
            if isinstance(value, str) and value:
                return Customer(customer_id=value[:255])
        record.notes["conversations with no known customer (kept under the thread id)"] += 1
        return Customer(customer_id=record.external_id[:255], kind=CustomerKind.VISITOR)

    def thread(self, record: ThreadRecord, problems: Iterable[Problem] = (), *, link: StoredLink | None) -> None:
        for problem in problems:
            self.report.problem(problem)
        try:
            agent = self._agent_for(record)
            customer = self._customer_for(record)
            outcome = thread_import(
                record, agent=agent, customer=customer, dry_run=self.options.dry_run, link=link
            )
        except NotFound as exc:
            self.report.problem(Problem("thread", record.external_id, exc.message))
            self.progress.advance()
            return
        except Exception as exc:
            self.report.problem(Problem("thread", record.external_id, f"not imported: {type(exc).__name__}: {exc}"))
            self.progress.advance()
            return
        self.report.conversation(
            external_id=record.external_id,
            status=outcome.status,
            conversation_id=outcome.conversation_id,
            items=outcome.items,
            messages=outcome.messages,
            customer_id=customer.customer_id,
            placeholders=record.placeholders,
            notes=record.notes,
        )
        self.progress.advance(outcome.messages)

    def failed_thread(self, problem: Problem) -> None:
        self.report.problem(problem)
        self.progress.advance()


class _ReadAhead:
    """Reads and maps the next conversations on a helper thread while the calling thread
    writes. Database drivers release the GIL while the database works, so reading the
    files overlaps with the writes instead of waiting for them. Bounded: at most `depth`
    conversations are held in memory."""

    _DONE = object()

    def __init__(self, loaders: list[tuple[str, str, ThreadLoader]], depth: int = 32) -> None:
        self._loaders = loaders
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="import-read-ahead", daemon=True)

    def _put(self, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for source, external_id, load in self._loaders:
                record, problems = load()
                if not self._put((source, external_id, record, problems)):
                    return
        except BaseException as exc:  # handed to the writing thread, which re-raises it
            self._put(exc)
            return
        self._put(self._DONE)

    def __enter__(self) -> Iterator[tuple[str, str, ThreadRecord, list[Problem]]]:
        self._thread.start()
        return self._items()

    def _items(self) -> Iterator[tuple[str, str, ThreadRecord, list[Problem]]]:
        while True:
            value = self._queue.get()
            if value is self._DONE:
                return
            if isinstance(value, BaseException):
                raise value
            yield value

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def conversations_import_files(*, paths: list[str | Path], options: ImportOptions) -> ImportReport:
    """Import Assistants exports and Chat Completions JSONL files."""
    report = ImportReport(source="files", dry_run=options.dry_run)
    importer = _Importer(report, options)
    handles: dict[int, BinaryIO] = {}
    try:
        contents = files_read(paths, handles)
        for problem in contents.problems:
            report.problem(problem)
        if options.customers:
            for problem in options.customers.problems:
                report.problem(problem)
        importer.assistants(contents.assistants)
        importer.progress.start(len(contents.threads))
        stored = {
            source: stored_links(source, [tid for s, tid, _ in contents.threads if s == source])
            for source in ImportSource.values
        }
        with _ReadAhead(contents.threads) as loaded:
            for source, external_id, record, problems in loaded:
                importer.thread(record, problems, link=stored[source].get(external_id))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        for handle in handles.values():
            handle.close()
        importer.progress.finish()
        report.finish()
    return report


def conversations_import_api(
    *, api: AssistantsApi, assistant_ids: list[str], options: ImportOptions
) -> ImportReport:
    """Import assistants by id and the threads the customer map lists, from an
    Assistants-compatible API. At most `options.concurrency` threads are fetched at once."""
    report = ImportReport(source=api.base_url, dry_run=options.dry_run)
    importer = _Importer(report, options)
    customers = options.customers or CustomerMap()
    for problem in customers.problems:
        report.problem(problem)
    fetched = []
    for assistant_id in dict.fromkeys(assistant_ids):
        try:
            fetched.append(api.assistant(assistant_id))
        except SourceError as exc:
            report.problem(Problem("assistant", assistant_id, str(exc)))
    importer.assistants(fetched)
    thread_ids = list(customers.customers)
    links = stored_links(ImportSource.ASSISTANTS, thread_ids)
    importer.progress.start(len(thread_ids))
    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency), thread_name_prefix="import")
    pending: set[Future[ThreadRecord | Problem]] = set()
    queue = iter(thread_ids)
    try:
        while True:
            while len(pending) < max(1, options.concurrency):
                thread_id = next(queue, None)
                if thread_id is None:
                    break
                link = links.get(thread_id)
                pending.add(pool.submit(api.thread, thread_id, link.cursor if link else ""))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                if isinstance(result, Problem):
                    importer.failed_thread(result)
                else:
                    importer.thread(result, link=links.get(result.external_id))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        importer.progress.finish()
        report.finish()
    return report
