"""Customer satisfaction (CSAT): the customer rates a resolved conversation 1-5, with
an optional comment, once per resolution.

`rating_add` is the one write, whichever door calls it (the widget's `rating` frame,
`POST /api/v1/conversations/<id>/rating`). It is authorised as `Action.RATE`: the
conversation's own visitor, or an API key with the write scope acting for its customer;
staff, read-only keys and other visitors are refused like any other action. It is
refused (Conflict) while the conversation is not resolved, and for a resolution already
rated: `Conversation.resolution` counts resolutions (`conversation_set_status`), so a
conversation reopened and resolved again is asked again, and each resolution is rated
at most once (a unique constraint holds the line under concurrent posts too).

Who handled it is decided when it is rated and kept on the rating: `human` with the
last staff member who replied, else `ai`. `rating_stats` is the read the dashboard
uses.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum

from conversations.authorization import Action, Actor, authorize
from conversations.errors import Conflict, InvalidInput
from conversations.models import Conversation, CsatRating, Handled, Message
from conversations.models.conversation import Status
from conversations.models.message import MessageKind
from conversations.services.locks import conversation_lock
from conversations.services.storable import text_problem

MAX_COMMENT_CHARS = 1000
SCORES = range(1, 6)


def _clean_score(score: Any) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise InvalidInput("score must be a whole number from 1 to 5.", fields={"score": "invalid"})
    return score


def _clean_comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise InvalidInput("comment must be a string.", fields={"comment": "invalid"})
    problem = text_problem(comment)
    if problem:
        raise InvalidInput(f"comment {problem}.", fields={"comment": problem})
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(
            f"comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}.",
            fields={"comment": "too long"},
        )
    return comment


def rating_add(*, conversation: Conversation, actor: Actor, score: Any, comment: Any = "") -> CsatRating:
    """Rate the conversation's current resolution. InvalidInput for a score outside 1-5
    or a comment over `MAX_COMMENT_CHARS`; Conflict (`not_resolved`, `already_rated`)
    when it is not resolved or this resolution is rated."""
    authorize(actor, Action.RATE, conversation)
    score = _clean_score(score)
    comment = _clean_comment(comment)
    try:
        with transaction.atomic():
            locked = conversation_lock(conversation.pk)
            if locked.status != Status.RESOLVED:
                raise Conflict("Only a resolved conversation can be rated.", code="not_resolved")
            if CsatRating.objects.filter(conversation_id=locked.pk, resolution=locked.resolution).exists():
                raise Conflict("This conversation has already been rated.", code="already_rated")
            staff_id = (
                Message.objects.filter(conversation_id=locked.pk, kind=MessageKind.STAFF)
                .order_by("-seq").values_list("author_id", flat=True).first()
            )
            replied = Message.objects.filter(conversation_id=locked.pk, kind=MessageKind.STAFF).exists()
            rating = CsatRating.objects.create(
                conversation_id=locked.pk, resolution=locked.resolution, score=score, comment=comment,
                handled=Handled.HUMAN if replied else Handled.AI, staff_id=staff_id,
            )
            # The list's column; not `updated_at`, which orders the list by activity.
            Conversation.objects.filter(pk=locked.pk).update(csat_score=score)
    except IntegrityError:
        # A concurrent rating of the same resolution committed first.
        raise Conflict("This conversation has already been rated.", code="already_rated") from None
    conversation.csat_score = score
    return rating


def rating_current(conversation: Conversation) -> CsatRating | None:
    """The rating of the conversation's current resolution, if it has one."""
    return CsatRating.objects.filter(conversation_id=conversation.pk, resolution=conversation.resolution).first()


def _summary(count: int, total: int) -> dict[str, Any]:
    return {"count": count, "average": round(total / count, 2) if count else None}


def rating_stats(*, since: Any = None, until: Any = None) -> dict[str, Any]:
    """CSAT for the dashboard: count and average overall, AI-only vs human-handled, and
    by the staff member who last replied (best average first), for ratings given in
    [`since`, `until`) (open-ended where None). One grouped query, and one for names."""
    rows = CsatRating.objects.all()
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    groups = list(rows.values("handled", "staff_id").annotate(n=Count("pk"), total=Sum("score")).order_by())
    handled = {key: [0, 0] for key in Handled.values}
    people: dict[int, list[int]] = {}
    for group in groups:
        handled[group["handled"]][0] += group["n"]
        handled[group["handled"]][1] += group["total"]
        if group["staff_id"] is not None:
            person = people.setdefault(group["staff_id"], [0, 0])
            person[0] += group["n"]
            person[1] += group["total"]
    names = {
        user.pk: user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=list(people))
    }
    by_person = sorted(
        ({"name": names.get(pk, "?"), **_summary(n, total)} for pk, (n, total) in people.items()),
        key=lambda p: (-p["average"], -p["count"], p["name"]),
    )
    return {
        **_summary(sum(n for n, _ in handled.values()), sum(t for _, t in handled.values())),
        "ai": _summary(*handled[Handled.AI]),
        "human": _summary(*handled[Handled.HUMAN]),
        "by_person": by_person,
    }
