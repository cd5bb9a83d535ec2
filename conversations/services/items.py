"""Appending items to a conversation: the one place a `seq` is allocated.

`item_append` must run inside a transaction. It locks the conversation row, takes
`next_seq`, and bumps the denormalised counters, so seqs are strictly increasing and,
because a rolled-back transaction also rolls back the counter, gap-free as clients see
them. Every writer (customer messages, the turn runner, staff, imports) goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.db.models.base import ModelState
from django.utils import timezone

from conversations.agent.agents import agent_cached
from conversations.agent.tokens import count_for_model, count_tokens, encoding_name_for_model, get_encoding
from conversations.models import Conversation, Message
from conversations.models.message import MessageKind
from conversations.retrieval import default_retriever
from conversations.services.facts import facts_keep
from conversations.services.locks import conversation_lock
from conversations.services.prepared import row_save, rows_insert

_PREVIEW_KINDS = (MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF)


def item_token_count(*, kind: str, text: str = "", arguments: str = "", model: str) -> int:
    return count_for_model(text + arguments, model) if (text or arguments) else 0


# The conversation fields `items_append` changes; a caller passing `save=False` saves
# them together with its own changes in one UPDATE.
ITEM_COUNTER_FIELDS = ("next_seq", "message_count", "last_message_at", "last_message_preview", "updated_at")


def _stored(row: Conversation, messages: list[Message], *, save: bool) -> None:
    """After the insert, in the same transaction: index the items (so the retrieval index
    never disagrees with the messages) and update the locked row's counters."""
    index = getattr(default_retriever(), "index", None)
    if index is not None:
        index(messages)
    row.message_count += len(messages)
    row.last_message_at = max(m.created_at for m in messages)
    previews = [m for m in messages if m.kind in _PREVIEW_KINDS]
    if previews:
        row.last_message_preview = previews[-1].text[:200]
    if save:
        row_save(row, ITEM_COUNTER_FIELDS)


def items_append(
    *,
    conversation: Conversation,
    items: list[dict[str, Any]],
    model: str | None = None,
    locked: bool = False,
    save: bool = True,
) -> list[Message]:
    """Append several items in order. Each dict holds Message fields; a missing
    `token_count` is counted here with the model's encoding.

    Precondition: inside `transaction.atomic()`. Pass `locked=True` only when
    `conversation` is the row `conversation_lock` returned in this same transaction
    (its counters are then current); otherwise the row is locked and re-read here.
    With `save=False` the caller must save `ITEM_COUNTER_FIELDS` before committing.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("items_append must run inside a transaction")
    row = conversation if locked else conversation_lock(conversation.pk)
    model = model or agent_cached(row.agent_id).model or "gpt-4o"
    now = timezone.now()
    messages = []
    for fields in items:
        fields = dict(fields)
        fields.setdefault("created_at", now)
        if "token_count" not in fields:
            fields["token_count"] = item_token_count(
                kind=fields["kind"],
                text=fields.get("text", ""),
                arguments=fields.get("tool_arguments", ""),
                model=model,
            )
        messages.append(Message(conversation=row, seq=row.next_seq, **fields))
        row.next_seq += 1
    rows_insert(messages)  # bulk_create's INSERT, without building it each time
    _stored(row, messages, save=save)
    facts_keep(conversation=row, messages=messages)
    if row is not conversation:
        for name in ITEM_COUNTER_FIELDS:
            setattr(conversation, name, getattr(row, name))
    return messages


def item_append(
    *, conversation: Conversation, model: str | None = None, locked: bool = False, save: bool = True,
    **fields: Any,
) -> Message:
    return items_append(conversation=conversation, items=[fields], model=model, locked=locked, save=save)[0]


def items_bulk_append(
    *,
    conversation: Conversation,
    items: list[dict[str, Any]],
    model: str | None = None,
    save: bool = True,
) -> list[Message]:
    """`items_append` for bulk writers (the importer): the same contract and results
    (seqs from the row's `next_seq`, token counts with the model's encoding, the
    retrieval index in the same transaction, the counters, the customer facts), with a
    lean insert.

    Precondition: inside `transaction.atomic()`, and `conversation` is the row
    `conversation_lock` returned in this same transaction, or one this transaction
    created (its counters are current). With `save=False` the caller must save
    `ITEM_COUNTER_FIELDS` before committing.

    Lean because the ORM's per-object work was most of an import's CPU time: the rows go
    in as multi-row `INSERT ... RETURNING` statements with values adapted once by the
    backend's adapters, and the returned `Message` objects are filled in directly rather
    than through `Model.__init__` and the insert compiler's per-field preparation.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("items_bulk_append must run inside a transaction")
    if not items:
        return []
    if not connection.features.can_return_rows_from_bulk_insert:
        return items_append(conversation=conversation, items=items, model=model, locked=True, save=save)
    row = conversation
    encoding = get_encoding(encoding_name_for_model(model or agent_cached(row.agent_id).model or "gpt-4o"))
    now = timezone.now()
    plan = _insert_plan()
    fields, attnames, related = plan.fields, plan.attnames, plan.related
    adapt = [_adapter(kind, field, connection) for kind, field in zip(plan.kinds, fields, strict=True)]
    # Every row has the same conversation: its key is adapted once.
    conversation_key = Message._meta.get_field("conversation").get_db_prep_save(row.pk, connection)
    slot = [f.attname for f in fields].index("conversation_id")
    adapt[slot] = None
    # Only the columns that need it are adapted per row: dates, JSON, related keys.
    converting = [(index, convert) for index, convert in enumerate(adapt) if convert is not None]
    json_slot = plan.order.index("metadata")
    empty_json = adapt[json_slot]({})
    messages: list[Message] = []
    rows: list[tuple[Any, ...]] = []
    constant, order, made = plan.constant, plan.order, plan.made
    for given in items:
        values = constant.copy()
        for name, value in given.items():
            attname = attnames.get(name)
            if attname is None:
                raise TypeError(f"Message has no field named {name!r}")
            if name in related and isinstance(value, Model):
                value = value.pk
            values[attname] = value
        for field in made:
            if field.attname not in values:
                values[field.attname] = now if field.attname == "created_at" else field.get_default()
        values["conversation_id"] = row.pk
        values["seq"] = row.next_seq
        row.next_seq += 1
        if "token_count" not in given:
            text = values["text"] + values["tool_arguments"]
            values["token_count"] = count_tokens(text, encoding) if text else 0
        message = Message.__new__(Message)
        message.__dict__.update(values)
        message._state = ModelState()
        messages.append(message)
        ordered = [values[name] for name in order]
        ordered[slot] = conversation_key
        for index, convert in converting:
            value = ordered[index]
            if value is not None:
                # Most items carry no metadata: its encoding is made once.
                ordered[index] = empty_json if index == json_slot and value == {} else convert(value)
        rows.append(tuple(ordered))
    cache = Message._meta.get_field("conversation")
    for message in messages:
        cache.set_cached_value(message, row)
    ids = _rows_insert(connection, plan, rows, conversation_key, messages[0].seq)
    for message in messages:
        message.id = ids[message.seq]
        message._state.adding = False
        message._state.db = connection.alias
    _stored(row, messages, save=save)
    facts_keep(conversation=row, messages=messages)
    return messages


def _rows_insert(
    connection: Any, plan: _InsertPlan, rows: list[tuple[Any, ...]], conversation_key: Any, first_seq: int
) -> dict[int, int]:
    """Insert one conversation's message rows (in `plan.order`); {seq: id} of them.

    PostgreSQL takes them by COPY, the server's bulk path, then one SELECT reads their
    ids back by seq (the conversation is locked, so these seqs are ours): no statement
    to parse in the driver, whose parse cache skips statements with over 50 parameters.
    SQLite takes multi-row `INSERT ... RETURNING` statements.
    """
    ops = connection.ops
    table = ops.quote_name(Message._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in plan.fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for values in rows:
                    copy.write_row(values)
            cursor.execute(
                f"SELECT seq, id FROM {table} WHERE conversation_id = %s AND seq >= %s",
                [conversation_key, first_seq],
            )
            return dict(cursor.fetchall())
        width = len(plan.fields)
        placeholder = "(" + ", ".join(["%s"] * width) + ")"
        batch = max(1, min(ops.bulk_batch_size(plan.fields, rows), 1000))
        ids: dict[int, int] = {}
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholder] * len(chunk))} "
                f"RETURNING {ops.quote_name('seq')}, {ops.quote_name('id')}",
                [value for values in chunk for value in values],
            )
            ids.update(cursor.fetchall())
        return ids


@dataclass(frozen=True)
class _InsertPlan:
    fields: list[Any]  # Message's columns but the key, in table order
    order: list[str]  # their attnames
    kinds: list[str]  # their internal types
    attnames: dict[str, str]  # field name or attname -> attname
    related: frozenset[str]  # names of foreign keys (which may be given as objects)
    constant: dict[str, Any]  # attname -> default, for fields whose default is a value
    made: list[Any]  # fields whose default is a callable (called only when not given)


@lru_cache(maxsize=1)
def _insert_plan() -> _InsertPlan:
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    return _InsertPlan(
        fields=fields,
        order=[f.attname for f in fields],
        kinds=[f.get_internal_type() for f in fields],
        attnames={f.name: f.attname for f in fields} | {f.attname: f.attname for f in fields},
        related=frozenset(f.name for f in fields if f.is_relation),
        # A field without a default has a constant one (None or ""); NOT_PROVIDED, a
        # class, only looks callable.
        constant={f.attname: f.get_default() for f in fields if not f.has_default() or not callable(f.default)},
        made=[f for f in fields if f.has_default() and callable(f.default)],
    )


def _adapter(kind: str, field: Any, connection: Any) -> Any:
    """How a value of `field` becomes a query parameter: dates, JSON and related keys as
    the ORM's `get_db_prep_save` makes them (aware datetimes and JSON straight through
    the backend's adapters), everything else as it is (None)."""
    ops = connection.ops
    if kind == "DateTimeField":
        if connection.vendor == "sqlite" and settings.USE_TZ:
            # What the SQLite backend's adapter does, without its per-value settings look-ups.
            zone = connection.timezone

            def convert(value: Any) -> Any:
                if value.utcoffset() is not None:
                    return str(value.astimezone(zone).replace(tzinfo=None))
                return field.get_db_prep_save(value, connection)

            return convert

        def convert(value: Any) -> Any:
            if timezone.is_aware(value):
                return ops.adapt_datetimefield_value(value)
            return field.get_db_prep_save(value, connection)

        return convert
    if kind == "JSONField":
        encoder = field.encoder
        return lambda value: ops.adapt_json_value(value, encoder)
    if field.is_relation:  # keys of related rows may be UUIDs
        return lambda value: field.get_db_prep_save(value, connection)
    return None
