"""Running an import: sources in, agents and conversations out, everything reported.

`conversations_import_files` and `conversations_import_api` are the two entry points
(the management command is a thin door onto them). Both import assistants first, then
threads one conversation per transaction (`writer.thread_import`), and return an
`ImportReport`. The API source fetches threads on a bounded pool of worker threads while
the calling thread alone writes to the database, so concurrency never means concurrent
writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from conversations.api.models import ApiClient
from conversations.errors import NotFound, PlatformError
from conversations.importers.api import AssistantsApi, SourceError
from conversations.importers.assistants_format import assistant_plan
from conversations.importers.files import KnowledgeFile, files_read
from conversations.importers.mapping import CustomerMap
from conversations.importers.models import ImportedAssistant, ImportSource
from conversations.importers.pipeline import ReadAhead, WriterPool
from conversations.importers.records import Customer, Problem, ThreadRecord
from conversations.importers.report import ImportReport, Progress
from conversations.importers.writer import (
    StoredLink,
    ThreadOutcome,
    agent_import,
    knowledge_file_import,
    stored_links,
    thread_import,
)
from conversations.knowledge.history_semantic import embeddings_deferred
from conversations.models import Agent
from conversations.models.conversation import CustomerKind
from conversations.services.conversations import agent_default
from tools.registry import registry

# Thread metadata keys that commonly carry the customer when no mapping names one.
_CUSTOMER_KEYS = ("customer_id", "user_id", "user")


@dataclass(frozen=True)
class _Job:
    record: ThreadRecord
    agent: Agent | None
    customer: Customer
    link: StoredLink | None
    dry_run: bool
    client: tuple[int, str] | None = None  # (id, name) of the API client to own it


def _write(job: _Job) -> ThreadOutcome | Exception:
    """Write one conversation; any failure comes back as the value (one bad conversation
    must not stop the rest). Runs on writer threads."""
    try:
        return thread_import(
            job.record, agent=job.agent, customer=job.customer, dry_run=job.dry_run, link=job.link,
            client_id=job.client[0] if job.client else None,
        )
    except Exception as exc:
        return exc


@dataclass
class ImportOptions:
    dry_run: bool = False
    agent_name: str = ""  # agent for threads whose assistant was not imported
    customers: CustomerMap | None = None
    concurrency: int = 4  # API threads fetched at once
    writers: int = 1  # conversations written at once (files; worth 2 or more on PostgreSQL only)
    progress: Progress | None = None
    api_client: str = ""  # API client (by name) to own the imported conversations


class _Importer:
    def __init__(self, report: ImportReport, options: ImportOptions) -> None:
        self.report = report
        self.options = options
        self.progress = options.progress or Progress(enabled=False)
        self._agents: dict[str, Agent | None] = {}
        self._fallback: Agent | None = None
        self._would_create: set[str] = set()
        self._tool_names = set(registry())
        self._clients: dict[str, tuple[int, str] | None] = {}
        self.default_client = self._client(options.api_client) if options.api_client else None
        if options.api_client and self.default_client is None:
            raise NotFound(f"No API client is named {options.api_client!r}; create it in the admin first.")

    def _client(self, name: str) -> tuple[int, str] | None:
        if name not in self._clients:
            pk = ApiClient.objects.filter(name=name).values_list("pk", flat=True).first()
            self._clients[name] = (pk, name) if pk is not None else None
        return self._clients[name]

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

    def files(self, files: Iterable[KnowledgeFile]) -> None:
        """Vector-store files into the knowledge base, before the threads that cite them."""
        for file in files:
            try:
                status, document_id = knowledge_file_import(file, dry_run=self.options.dry_run)
            except (PlatformError, OSError) as exc:
                reason = exc.message if isinstance(exc, PlatformError) else str(exc)
                self.report.problem(Problem("file", file.file_id, f"not imported into the knowledge base: {reason}",
                                            None, file.name))
                continue
            self.report.knowledge_file(file.file_id, file.name, status, document_id)

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

    def prepare(self, record: ThreadRecord, problems: Iterable[Problem], link: StoredLink | None) -> _Job | None:
        """Report the record's problems and decide its agent and customer (the calling
        thread's work); None when it cannot be imported (reported)."""
        for problem in problems:
            self.report.problem(problem)
        try:
            customer = self._customer_for(record)
            client = self.default_client
            if customer.api_client:
                client = self._client(customer.api_client)
                if client is None:
                    raise NotFound(f"the mapping names API client {customer.api_client!r}, and none is named so")
            return _Job(record, self._agent_for(record), customer, link, self.options.dry_run, client)
        except NotFound as exc:
            self.report.problem(Problem("thread", record.external_id, exc.message))
            self.progress.advance()
            return None

    def finish(self, job: _Job, outcome: ThreadOutcome | Exception) -> None:
        record = job.record
        if isinstance(outcome, Exception):
            reason = f"not imported: {type(outcome).__name__}: {outcome}"
            self.report.problem(Problem("thread", record.external_id, reason))
            self.progress.advance()
            return
        self.report.conversation(
            external_id=record.external_id,
            status=outcome.status,
            conversation_id=outcome.conversation_id,
            items=outcome.items,
            messages=outcome.messages,
            customer_id=job.customer.customer_id,
            placeholders=record.placeholders,
            notes=record.notes,
            runs=outcome.runs,
            order_inferred=record.order_inferred,
            api_client=job.client[1] if job.client else "",
        )
        for warning in record.warnings:
            self.report.warning(warning)
        self.progress.advance(outcome.messages)

    def thread(self, record: ThreadRecord, problems: Iterable[Problem] = (), *, link: StoredLink | None) -> None:
        """Import one thread on the calling thread."""
        job = self.prepare(record, problems, link)
        if job is not None:
            self.finish(job, _write(job))

    def failed_thread(self, problem: Problem) -> None:
        self.report.problem(problem)
        self.progress.advance()


@embeddings_deferred()
def conversations_import_files(*, paths: list[str | Path], options: ImportOptions) -> ImportReport:
    """Import Assistants exports and Chat Completions JSONL files."""
    report = ImportReport(source="files", dry_run=options.dry_run)
    importer = _Importer(report, options)
    handles: dict[int, BinaryIO] = {}
    try:
        contents = files_read(paths, handles)
        for problem in contents.problems:
            report.problem(problem)
        for conflict in contents.conflicts:
            report.conflict(conflict)
        report.notes.update(contents.notes)
        importer.files(contents.files)
        if options.customers:
            for problem in options.customers.problems:
                report.problem(problem)
        importer.assistants(contents.assistants)
        importer.progress.start(len(contents.threads))
        stored = {
            source: stored_links(source, [tid for s, tid, _ in contents.threads if s == source])
            for source in ImportSource.values
        }
        pool: WriterPool[_Job] = WriterPool(options.writers, _write)
        interrupted = True
        try:
            with ReadAhead(contents.threads) as loaded:
                for source, external_id, record, problems in loaded:
                    job = importer.prepare(record, problems, stored[source].get(external_id))
                    for done in pool.submit(job) if job else ():
                        importer.finish(*done)
            interrupted = False
        finally:
            for done in pool.close(discard_waiting=interrupted):
                importer.finish(*done)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        for handle in handles.values():
            handle.close()
        importer.progress.finish()
        report.finish()
    return report


@embeddings_deferred()
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
