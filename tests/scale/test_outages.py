"""The services behind the daphne processes go away and come back.

Redis restarted mid-answer: the engine keeps streaming and stores the answer (a lost
event is only a lost hint); a client that reconnects catches up by `seq` from the
database and receives live events again. PostgreSQL unreachable: requests get a clear
503 instead of a 500 or a hang, and the processes recover by themselves when it
returns, including their engines (a message queued during the outage is answered).
"""

from __future__ import annotations

import time

import httpx
import pytest
from django.conf import settings
from django.test import Client

from conversations.models import Message
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests import fake_provider as fp
from tests.conftest import wait_for, wait_turn_finished
from tests.scale.harness import redis_outage, redis_restart_unsupported

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def seqs(conversation, after: int = 0) -> list[int]:
    return list(Message.objects.filter(conversation=conversation, seq__gt=after).order_by("seq").values_list("seq", flat=True))


def test_redis_restart_mid_answer_loses_nothing_and_clients_catch_up_by_seq(scale):
    reason = redis_restart_unsupported(settings.REDIS_URL)
    if reason:
        pytest.skip(reason)
    words = "Your order 1001 left our warehouse on Monday and the courier expects to deliver it on Thursday."
    scale.provider.queue(fp.text(words, delta_delay=0.15), fp.text("Anything else?"))
    conversation = conversation_create(channel="widget")
    scale.recorder.subscribe(conversation.id)
    first = message_post(conversation=conversation, text="Where is order 1001?")
    wait_for(lambda: scale.recorder.of("text.delta", first.turn.id), timeout=20)
    last_seen = max(e["seq"] for e in scale.recorder.of("message"))
    sent_before = len(scale.provider.events_sent)
    # When Redis goes down mid-answer (and comes back empty, as after a crash)
    with redis_outage():
        # the engine keeps streaming while every publish fails
        wait_for(lambda: len(scale.provider.events_sent) >= sent_before + 3, timeout=10)
    # Then a listener waiting on the layer was told (a websocket consumer closes with
    # 4503 and its client reconnects), with either layer
    assert scale.recorder.errors >= 1
    # and the answer is stored whole, exactly once
    turn = wait_turn_finished(first.turn.id, timeout=30)
    assert turn.status == "completed", turn.error_message
    answer = Message.objects.get(conversation=conversation, kind="assistant")
    assert answer.text == words
    # and a reconnecting client catches up by seq: what it saw plus what it asks for is
    # the whole transcript, without gaps or repeats
    scale.recorder.resubscribe(conversation.id)  # group memberships died with Redis
    missed = seqs(conversation, after=last_seen)
    assert list(range(1, last_seen + 1)) + missed == [1, 2] == seqs(conversation)
    # and live events flow again through the restarted Redis, from the daphne processes
    second = message_post(conversation=conversation, text="Thanks!")
    assert wait_turn_finished(second.turn.id, timeout=30).status == "completed"
    wait_for(lambda: scale.recorder.of("turn.completed", second.turn.id), timeout=10)
    assert scale.recorder.of("text.delta", second.turn.id)
    assert seqs(conversation) == [1, 2, 3, 4]


def test_postgres_unreachable_gives_503_then_recovers_by_itself(scale, admin_user):
    client = Client()
    client.force_login(admin_user)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    page = "/admin/conversations/conversation/"
    web1, web2 = scale.cluster.processes
    assert httpx.get(web1.url + page, cookies=cookies, timeout=10).status_code == 200
    # When the database becomes unreachable
    scale.proxy.cut()
    try:
        started = time.monotonic()
        api = httpx.get(web1.url + page, cookies=cookies, headers={"accept": "application/json"}, timeout=20)
        html = httpx.get(web2.url + page, cookies=cookies, timeout=20)
        # Then requests get a clear 503, quickly, in the shape the client asked for
        assert api.status_code == 503 and html.status_code == 503
        assert api.json()["error"]["code"] == "service_unavailable" and api.headers["retry-after"]
        assert "Service unavailable" in html.text and html.headers["content-type"].startswith("text/html")
        assert time.monotonic() - started < 10
        # and a message arriving meanwhile (stored by a process that still reaches the
        # database) waits in the queue
        scale.provider.queue(fp.text("Back again."))
        conversation = conversation_create(channel="api")
        posted = message_post(conversation=conversation, text="Are you there?")
    finally:
        scale.proxy.restore()
    # When the database returns, both processes recover without a restart
    for web in (web1, web2):
        wait_for(lambda web=web: httpx.get(web.url + page, cookies=cookies, timeout=10).status_code == 200,
                 timeout=30, interval=0.2)
    assert all(web.alive() for web in (web1, web2))
    # and their engines too: the queued message is answered
    turn = wait_turn_finished(posted.turn.id, timeout=30)
    assert turn.status == "completed", turn.error_message
    assert list(Message.objects.filter(conversation=conversation).values_list("kind", "text")) == [
        ("user", "Are you there?"), ("assistant", "Back again."),
    ]
