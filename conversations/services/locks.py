"""Row locks on conversations: the one place the lock order lives.

Every write that touches a conversation and one of its turns locks the conversation
row first, then the turn (claim, finish, fail, retry, cancel, sweep, post, handoff), so
writers cannot deadlock on PostgreSQL. They all lock through `conversation_lock`. The
sweeper's batch look-up of unclaimed conversations (`conversations_lock_batch`) is the
one other lock: it takes many rows at once and skips those someone holds.

SQLite has no row locks (`select_for_update` is a no-op there): its IMMEDIATE
transactions already let one writer in at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, overload

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet

from conversations.models import Conversation, Turn
from conversations.models.turn import TurnStatus
from conversations.services.prepared import PreparedRead

# The common lock (a post, a staff reply, an item append), built by the ORM once.
_CONVERSATION_FOR_UPDATE = PreparedRead(
    lambda pk: Conversation.objects.filter(pk=pk).select_for_update(), Conversation._meta.pk
)
_THROUGH_TURN: dict[tuple[tuple[str, ...], bool, bool], PreparedRead[Turn]] = {}


@overload
def conversation_lock(
    conversation_id: Any, *, with_agent: bool = ..., skip_locked: bool = ...,
) -> Conversation: ...
@overload
def conversation_lock(
    conversation_id: Any, *, turn_id: Any, turn_fields: Iterable[str] | None = ..., with_agent: bool = ...,
    skip_locked: bool = ..., with_queued: bool = ...,
) -> tuple[Conversation, Turn]: ...
def conversation_lock(
    conversation_id: Any,
    *,
    turn_id: Any = None,
    turn_fields: Iterable[str] | None = None,
    with_agent: bool = False,
    skip_locked: bool = False,
    with_queued: bool = False,
) -> Any:
    """Lock the conversation row (SELECT ... FOR UPDATE), then, given `turn_id`, the turn:
    the lock order. Precondition: inside `transaction.atomic()`.

    - Without `turn_id`: returns the locked conversation. Its agent is not joined
      (read it with `agent_cached(row.agent_id)`) unless `with_agent`, which joins it
      without locking it: FOR UPDATE on the agent row would stall every insert of a
      turn of that agent (its foreign key takes a share lock) until commit.
    - With `turn_id`: returns `(conversation, turn)`, both locked, the conversation first.
      `conversation_id` may be None: it is the turn's.
    - With `turn_id` and `turn_fields`: one statement reads the turn's `turn_fields`
      joined to its whole conversation row and locks the conversation only (FOR UPDATE
      OF it): for writers that change the turn with a conditional UPDATE. With
      `with_queued` the same statement sets `turn.more_queued`: whether another turn of
      the conversation is queued (read under the lock, so a later post dispatches itself).
    - `skip_locked`: a row someone else holds is skipped; then, and when the row does
      not exist, the result is None (the sweeps leave such conversations to their holder).
    Raises `DoesNotExist` for a missing row otherwise."""
    if turn_id is not None and turn_fields is not None:
        return _lock_through_turn(turn_id, turn_fields, skip_locked=skip_locked, with_queued=with_queued)
    if turn_id is None and not with_agent and not skip_locked:
        found = _CONVERSATION_FOR_UPDATE.first(conversation_id)
        if found is None:
            raise Conversation.DoesNotExist("Conversation matching query does not exist.")
        return found
    if conversation_id is None:
        conversation_id = Turn.objects.values_list("conversation_id", flat=True).get(pk=turn_id)
    rows: QuerySet[Conversation] = Conversation.objects.filter(pk=conversation_id)
    if with_agent:
        rows = rows.select_for_update(of=("self",), skip_locked=skip_locked).select_related("agent")
    else:
        rows = rows.select_for_update(skip_locked=skip_locked)
    if skip_locked:
        conversation = rows.first()
        if conversation is None:
            return None
    else:
        conversation = rows.get()
    if turn_id is None:
        return conversation
    return conversation, Turn.objects.select_for_update().get(pk=turn_id)


def _lock_through_turn(turn_id: Any, turn_fields: Iterable[str], *, skip_locked: bool, with_queued: bool) -> Any:
    key = (tuple(turn_fields), skip_locked, with_queued)
    read = _THROUGH_TURN.get(key)
    if read is None:
        read = _THROUGH_TURN[key] = PreparedRead(
            lambda pk: _through_turn(key[0], skip_locked=skip_locked, with_queued=with_queued).filter(pk=pk),
            Turn._meta.pk,
        )
    turn = read.first(turn_id)
    if turn is None:
        if skip_locked:
            return None
        raise Turn.DoesNotExist("Turn matching query does not exist.")
    return turn.conversation, turn


def _through_turn(turn_fields: tuple[str, ...], *, skip_locked: bool, with_queued: bool) -> QuerySet[Turn]:
    rows = (
        Turn.objects.select_related("conversation")
        .select_for_update(of=("conversation",), skip_locked=skip_locked)
        .only(*turn_fields, "conversation")
    )
    if with_queued:
        queued = Turn.objects.filter(conversation_id=OuterRef("conversation_id"), status=TurnStatus.QUEUED)
        rows = rows.annotate(more_queued=Exists(queued))
    return rows


def conversations_lock_batch(conversations: QuerySet[Conversation], limit: int) -> list[Any]:
    """The ids of up to `limit` of `conversations`, taken with SKIP LOCKED in a
    transaction of their own: rows someone is working on right now are left out, so
    sweepers in several processes get different batches and never wait. The locks end
    with that transaction (the caller dispatches the ids; the claim locks again). On
    SQLite, a plain read: no write transaction."""
    if not connection.features.has_select_for_update:
        return list(conversations.values_list("pk", flat=True)[:limit])
    with transaction.atomic():
        return list(conversations.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
