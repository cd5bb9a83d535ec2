"""Writing importer records into the database: agents from assistants, and conversations
with their items, one transaction per conversation.

Per conversation, in one transaction: find (or create) the conversation through its
`ImportedConversation` link, lock it, drop the items whose `external_id` is already
stored, and append the rest with `items_bulk_append` (services/items.py, where seqs are
allocated) in one call, which inserts them without the ORM's per-object work. A crash
therefore leaves whole conversations only, and a re-run adds exactly what is missing. Runs become finished turns (trigger "imported") on the
customer message they answered, with an `ImportedRun` each (unique per conversation and
run id). A dry run answers the same questions with reads only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from conversations.api.models import ClientConversation
from conversations.errors import PayloadTooLarge
from conversations.importers.files import KnowledgeFile
from conversations.importers.models import ImportedAssistant, ImportedConversation, ImportedFile, ImportedRun
from conversations.importers.records import AgentPlan, Customer, ItemRecord, RunRecord, ThreadRecord
from conversations.knowledge.services import document_create
from conversations.knowledge.text import MAX_UPLOAD_BYTES, extract
from conversations.models import Agent, Conversation, Message, Turn
from conversations.models.conversation import Channel, Status
from conversations.models.turn import TurnTrigger
from conversations.services.items import ITEM_COUNTER_FIELDS, conversation_lock, items_bulk_append


@dataclass(frozen=True)
class ThreadOutcome:
    status: str  # "created", "updated", "unchanged", or "empty" (nothing to create it with)
    conversation_id: str  # empty in a dry run that would create it
    items: int  # items written (or that would be)
    messages: int  # source messages among them
    runs: int = 0  # runs written as imported turns (or that would be)


def agent_import(plan: AgentPlan, *, dry_run: bool = False) -> tuple[str, Agent | None]:
    """Create the agent an assistant becomes, once. Returns ("created" | "unchanged",
    agent); an agent imported before is left as staff may have edited it since."""
    link = ImportedAssistant.objects.select_related("agent").filter(assistant_id=plan.assistant_id).first()
    if link is not None:
        return "unchanged", link.agent
    if dry_run:
        return "created", None
    try:
        with transaction.atomic():
            agent = Agent.objects.create(
                name=_free_agent_name(plan),
                model=plan.model,
                instructions=plan.instructions,
                tools=plan.tools,
                temperature=plan.temperature,
            )
            ImportedAssistant.objects.create(assistant_id=plan.assistant_id, agent=agent)
    except IntegrityError:
        # Imported concurrently by another run.
        link = ImportedAssistant.objects.select_related("agent").get(assistant_id=plan.assistant_id)
        return "unchanged", link.agent
    return "created", agent


def _free_agent_name(plan: AgentPlan) -> str:
    for candidate in (plan.name, f"{plan.name[:90]} ({plan.assistant_id})"[:120], plan.assistant_id[:120]):
        if not Agent.objects.filter(name=candidate).exists():
            return candidate
    return f"{plan.assistant_id[:80]} {timezone.now():%Y%m%d%H%M%S%f}"


def _unique(items: list[ItemRecord]) -> list[ItemRecord]:
    """Items with distinct external ids, first occurrence kept (exports may overlap)."""
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.external_id not in seen:
            seen.add(item.external_id)
            unique.append(item)
    return unique


def _message_count(items: list[ItemRecord]) -> int:
    return len({item.message_key for item in items if item.message_key})


@dataclass(frozen=True)
class StoredLink:
    """An already-imported thread: where it went and what the last import saw."""

    pk: int
    conversation_id: Any
    cursor: str
    metadata: dict[str, Any]
    client_id: int | None = None  # the API client that owns the conversation


def stored_links(source: str, external_ids: list[str]) -> dict[str, StoredLink]:
    """The links of the already-imported threads among `external_ids`, in a few queries."""
    links: dict[str, StoredLink] = {}
    for start in range(0, len(external_ids), 500):
        rows = ImportedConversation.objects.filter(
            source=source, external_id__in=external_ids[start : start + 500]
        ).values_list(
            "external_id", "pk", "conversation_id", "cursor", "conversation__metadata",
            "conversation__api_client_link__client_id",
        )
        for external_id, pk, conversation_id, cursor, metadata, client_id in rows:
            links[external_id] = StoredLink(pk, conversation_id, cursor, metadata or {}, client_id)
    return links


_LOOK_UP = object()


def thread_import(
    record: ThreadRecord,
    *,
    agent: Agent | None,
    customer: Customer,
    dry_run: bool = False,
    link: Any = _LOOK_UP,
    client_id: int | None = None,
) -> ThreadOutcome:
    """Bring one thread in (see the module docstring). Safe to call again with the same
    or a longer record, and from concurrent runs (the link's unique key decides).
    `link` is the thread's `StoredLink` (or None) when the caller looked it up in bulk.
    `client_id` makes the conversation the API client's (`ClientConversation`), when no
    client owns it yet."""
    try:
        return _thread_import(record, agent=agent, customer=customer, dry_run=dry_run, link=link,
                              client_id=client_id)
    except IntegrityError:
        # Another run created this conversation between our read and our insert; its
        # transaction won and ours rolled back whole. Now we find its link.
        return _thread_import(record, agent=agent, customer=customer, dry_run=dry_run, link=_LOOK_UP,
                              client_id=client_id)


def _thread_import(
    record: ThreadRecord, *, agent: Agent | None, customer: Customer, dry_run: bool, link: Any,
    client_id: int | None,
) -> ThreadOutcome:
    items = _unique(record.items)
    if link is _LOOK_UP:
        link = stored_links(record.source, [record.external_id]).get(record.external_id)
    if link is None:
        if not items:
            return ThreadOutcome("empty", "", 0, 0)
        if dry_run:
            return ThreadOutcome("created", "", len(items), _message_count(items), len(record.runs))
        with transaction.atomic():
            _relax_commit()
            return _conversation_create(record, items, agent=agent, customer=customer, client_id=client_id)
    # Look before locking: a re-run over unchanged threads then writes nothing at all.
    new = _new_items(link.conversation_id, items)
    new_runs = _new_runs(link.conversation_id, record.runs)
    cursor_moved = bool(record.cursor) and record.cursor != link.cursor
    metadata_changed = {**link.metadata, **record.metadata} != link.metadata
    claim = client_id is not None and link.client_id is None
    if client_id is not None and link.client_id not in (None, client_id):
        record.notes["conversations owned by another API client left with it"] += 1
    if dry_run or not (new or new_runs or metadata_changed or cursor_moved or claim):
        status = "updated" if new or new_runs else "unchanged"
        return ThreadOutcome(status, str(link.conversation_id), len(new), _message_count(new), len(new_runs))
    with transaction.atomic():
        _relax_commit()
        conversation = conversation_lock(link.conversation_id)
        new = _new_items(conversation.pk, items)  # again, under the lock
        if new:
            _citations_link(new)
            items_bulk_append(conversation=conversation, items=[item.fields() for item in new])
        runs = _runs_write(conversation, _new_runs(conversation.pk, record.runs))
        if claim and client_id is not None:
            ClientConversation.objects.get_or_create(conversation=conversation, defaults={"client_id": client_id})
        merged = {**conversation.metadata, **record.metadata}
        if merged != conversation.metadata:
            Conversation.objects.filter(pk=conversation.pk).update(metadata=merged)
        if cursor_moved:
            ImportedConversation.objects.filter(pk=link.pk).update(
                cursor=record.cursor[:255], updated_at=timezone.now()
            )
    status = "updated" if new or runs or claim else "unchanged"
    return ThreadOutcome(status, str(conversation.pk), len(new), _message_count(new), runs)


def _citations_link(items: list[ItemRecord]) -> None:
    """Point `[cited file <id>]` placeholders at the knowledge documents imported under
    those file ids: the title in the text, and `metadata["citations"]` with the document."""
    cited = {file_id for item in items for file_id in item.metadata.get("cited_files", ())}
    if not cited:
        return
    documents = {
        file_id: (document_id, title)
        for file_id, document_id, title in ImportedFile.objects.filter(file_id__in=cited).values_list(
            "file_id", "document_id", "document__title"
        )
    }
    for item in items:
        file_ids = item.metadata.get("cited_files")
        if not file_ids:
            continue
        citations = []
        for file_id in file_ids:
            if file_id in documents:
                document_id, title = documents[file_id]
                item.text = item.text.replace(f"[cited file {file_id}]", f"[cited file {file_id}: {title}]")
                citations.append({"file_id": file_id, "document": document_id, "title": title})
        if citations:
            item.metadata["citations"] = citations


def knowledge_file_import(file: KnowledgeFile, *, dry_run: bool = False) -> tuple[str, int | None]:
    """Bring one exported vector-store file into the knowledge base under its file id,
    once: ("created" | "unchanged", document id). Raises InvalidInput (or
    PayloadTooLarge) for a file the knowledge base cannot take."""
    existing = ImportedFile.objects.filter(file_id=file.file_id).values_list("document_id", flat=True).first()
    if existing is not None:
        return "unchanged", existing
    size = file.path.stat().st_size
    if size > MAX_UPLOAD_BYTES:  # refused before reading it into memory
        raise PayloadTooLarge(f"The file is {size} bytes; the limit is {MAX_UPLOAD_BYTES}.")
    data = file.path.read_bytes()
    if dry_run:
        extract(file.path.name, data)  # would it be accepted?
        return "created", None
    with transaction.atomic():
        document = document_create(upload=(file.path.name, data))
        ImportedFile.objects.create(
            file_id=file.file_id, document=document, filename=file.name[:255],
            vector_store_ids=list(file.vector_store_ids),
        )
    return "created", document.pk


def _new_runs(conversation_id: Any, runs: list[RunRecord]) -> list[RunRecord]:
    if not runs:
        return []
    stored = set(
        ImportedRun.objects.filter(conversation_id=conversation_id, run_id__in=[r.run_id for r in runs])
        .values_list("run_id", flat=True)
    )
    return [run for run in runs if run.run_id not in stored]


def _runs_write(conversation: Conversation, runs: list[RunRecord]) -> int:
    """Each run as a finished turn (trigger "imported") on the customer message it
    answered, after that message's existing attempts, dated from the run. A few queries
    per conversation, however many runs."""
    if not runs:
        return 0
    messages = dict(
        Message.objects.filter(conversation=conversation, external_id__in={r.answers for r in runs})
        .values_list("external_id", "pk")
    )
    attempts: Counter[int] = Counter(
        dict(
            Turn.objects.filter(user_message_id__in=messages.values())
            .values_list("user_message_id")
            .annotate(n=Count("pk"))
            .values_list("user_message_id", "n")
        )
    )
    turns: list[Turn] = []
    kept: list[RunRecord] = []
    for run in runs:
        message_id = messages.get(run.answers)
        if message_id is None:
            continue
        attempts[message_id] += 1
        latency = None
        if run.started_at and run.finished_at and run.finished_at >= run.started_at:
            latency = int((run.finished_at - run.started_at).total_seconds() * 1000)
        turns.append(Turn(
            conversation=conversation,
            user_message_id=message_id,
            attempt=min(attempts[message_id], 32767),
            trigger=TurnTrigger.IMPORTED,
            status=run.status,
            error_code=run.error_code,
            error_message=run.error_message,
            agent_id=conversation.agent_id,
            model=run.model,
            input_tokens=run.input_tokens,
            output_tokens=run.output_tokens,
            started_at=run.started_at,
            finished_at=run.finished_at,
            latency_ms=latency,
        ))
        kept.append(run)
    if not turns:
        return 0
    Turn.objects.bulk_create(turns)
    # `created_at` is set on insert to now; the run happened when the source says.
    dated = [turn for turn, run in zip(turns, kept, strict=True) if run.created_at]
    for turn, run in zip(turns, kept, strict=True):
        if run.created_at:
            turn.created_at = run.created_at
    if dated:
        Turn.objects.bulk_update(dated, ["created_at"])
    ImportedRun.objects.bulk_create([
        ImportedRun(
            turn=turn, conversation=conversation, run_id=run.run_id, status=run.source_status,
            instructions=run.instructions, required_action=run.required_action, last_error=run.last_error,
            run=run.raw,
        )
        for turn, run in zip(turns, kept, strict=True)
    ])
    return len(turns)


def _new_items(conversation_id: Any, items: list[ItemRecord]) -> list[ItemRecord]:
    stored = set(
        Message.objects.filter(conversation_id=conversation_id)
        .exclude(external_id="")
        .values_list("external_id", flat=True)
    )
    return [item for item in items if item.external_id not in stored]


def _conversation_create(
    record: ThreadRecord, items: list[ItemRecord], *, agent: Agent | None, customer: Customer,
    client_id: int | None = None,
) -> ThreadOutcome:
    assert agent is not None  # None only in a dry run, which creates nothing
    conversation = Conversation.objects.create(
        agent=agent,
        customer_id=customer.customer_id,
        customer_kind=customer.kind,
        customer_email=customer.email,
        customer_name=customer.name,
        channel=Channel.IMPORTED,
        status=Status.RESOLVED,
        external_id=record.external_id[:255],
        metadata={**record.metadata, "imported_from": _origin(record)},
    )
    ImportedConversation.objects.create(
        source=record.source, external_id=record.external_id, conversation=conversation, cursor=record.cursor[:255]
    )
    if client_id is not None:
        ClientConversation.objects.create(conversation=conversation, client_id=client_id)
    if items:
        _citations_link(items)
        # The row was created in this transaction: nobody else can see it, let alone lock it.
        # Its counters are saved below, with its dates, in one UPDATE.
        items_bulk_append(conversation=conversation, items=[item.fields() for item in items], save=False)
    runs = _runs_write(conversation, record.runs)
    # The conversation happened when the source says, not when it was imported.
    started = record.created_at or (items[0].created_at if items else None) or timezone.now()
    last = max((i.created_at for i in items if i.created_at), default=started)
    counters = {name: getattr(conversation, name) for name in ITEM_COUNTER_FIELDS}
    counters.update(created_at=started, updated_at=max(last, started))
    Conversation.objects.filter(pk=conversation.pk).update(**counters)
    return ThreadOutcome("created", str(conversation.pk), len(items), _message_count(items), runs)


def _relax_commit() -> None:
    """On PostgreSQL, commit this transaction without waiting for its WAL flush.

    An import commits once per conversation, and waiting for each flush made the disk,
    not the work, the limit. Turning it off risks no corruption or partial conversation:
    if the database server itself crashes, the last few committed conversations (at most
    about a second's worth) may be lost, and the next run of an import - idempotent by
    design - brings them back. It applies to this transaction only.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _origin(record: ThreadRecord) -> dict[str, Any]:
    origin: dict[str, Any] = {"source": record.source, "id": record.external_id}
    if record.origin:
        origin["origin"] = record.origin
    return origin
