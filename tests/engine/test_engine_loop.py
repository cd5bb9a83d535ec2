"""The per-process engine across event loops: a process (or a test run) may bind it to
several loops over its life, and callers without a loop share one private loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async

from conversations.agent.engine import Engine, engine
from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.engine.support import answered, ask
from tests.fake_provider import text


def test_callers_without_a_loop_share_one_private_loop(settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "SWEEP_INTERVAL_SECONDS": 0}
    fresh = Engine()
    loops: list[asyncio.AbstractEventLoop] = []
    done = threading.Semaphore(0)
    start = threading.Barrier(8)

    async def note_loop() -> None:
        loops.append(asyncio.get_running_loop())
        done.release()

    def caller() -> None:
        start.wait()
        fresh.submit(note_loop())

    before = sum(t.name == "engine-loop" for t in threading.enumerate())
    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(8):
        assert done.acquire(timeout=5)

    assert len(set(map(id, loops))) == 1
    assert sum(t.name == "engine-loop" for t in threading.enumerate()) == before + 1


@pytest.mark.django_db(transaction=True)
def test_turns_run_on_one_loop_after_another(conversation, provider, settings):
    """Like consecutive async tests, or a server restarted in-process: the engine follows
    the loop it is bound to, falls back to its private loop when that one is gone, and
    turns on a later loop are not broken by state left on an earlier one."""

    async def one_turn(question: str) -> Turn:
        engine.bind()
        posted = await sync_to_async(message_post)(conversation=conversation, text=question)
        await engine.wait_idle(15)
        return await Turn.objects.aget(pk=posted.turn.pk)

    # No SDK retries, so a broken pooled connection could not be papered over.
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "PROVIDER_MAX_RETRIES": 0}
    provider.queue(text("First."), text("Second."))
    first = asyncio.run(one_turn("One"))
    second = asyncio.run(one_turn("Two"))
    third = answered(ask(conversation, "Three"))  # no running loop here: the private one

    assert [first.status, second.status, third.status] == ["completed"] * 3, (
        first.error_message, second.error_message, third.error_message,
    )
    assert list(Message.objects.filter(kind="assistant").order_by("seq").values_list("text", flat=True)) == [
        "First.", "Second.", "OK",
    ]


@pytest.mark.django_db(transaction=True)
async def test_an_engine_bound_to_this_loop_runs_turns_here(bound, agent, provider):
    conversation = await sync_to_async(conversation_create)(agent=agent)
    provider.queue(text("Here."))
    seen_loop = asyncio.get_running_loop()

    posted = await sync_to_async(message_post)(conversation=conversation, text="Where?")
    await bound.wait_idle(15)

    assert bound.loop is seen_loop
    assert (await Turn.objects.aget(pk=posted.turn.pk)).status == "completed"
