"""The widget in a real browser when the server's Redis restarts mid-answer.

One daphne process on the Redis channel layer (a redis-server this module starts on a
free port, never the shared one) and SQLite, answering with the offline model. Redis
restarts while an answer streams: the server closes the socket with 4503, the widget
says it is reconnecting, reconnects, and shows the stored answer without the visitor
sending anything else, once, in order.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import CHROMIUM
from tests.scale.harness import RedisServer, stop_other_clusters
from tests.scale_mode import scale_run
from tests.widget.server import DaphneServer
from tests.widget.test_browser import ROOT, Widget, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed here"),
    # It starts its own redis-server in either pass; the scale pass adds only the shared
    # PostgreSQL test database. There, once in three whole scale runs, the 4503 close
    # never came (it passes alone in scale mode); until that is understood it runs in the
    # embedded pass, and tests/scale/test_redis_loss.py covers a Redis restart with
    # many sockets in scale mode.
    pytest.mark.skipif(scale_run(), reason="runs in the embedded pass, on a redis-server of its own"),
]

# Records every close code the page's websockets see, before the widget's script runs.
RECORD_CLOSES = """
window.__closes = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) { super(...args); this.addEventListener('close', (e) => window.__closes.push(e.code)); }
};
"""
RECORD_STATUS = f"""() => {{
    window.__statuses = [];
    const status = {ROOT}.querySelector('.status');
    new MutationObserver(() => window.__statuses.push(status.textContent))
        .observe(status, {{subtree: true, childList: true, characterData: true}});
}}"""


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("widget-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[DaphneServer]:
    daphne = DaphneServer(tmp_path_factory.mktemp("widget-redis-server"),
                          env={"SUPPORT_OFFLINE_WORD_DELAY": "0.04"})
    daphne.env.update({"REDIS_URL": redis_server.url, "SUPPORT_REDIS_PREFIX": "widget-redis-restart"})
    daphne.prepare()
    stop_other_clusters()  # in scale mode they share its database and would claim its turns
    daphne.start()
    yield daphne
    daphne.stop()


def test_redis_restart_mid_answer_the_widget_reconnects_and_shows_the_stored_answer(
        server: DaphneServer, redis_server: RedisServer, context: Any) -> None:
    context.add_init_script(RECORD_CLOSES)
    widget = Widget.visit(context, server)
    widget.open()
    widget.send("hello")
    expect(widget.answers()).to_have_count(1)
    widget.page.evaluate(RECORD_STATUS)

    widget.send("hi there")  # a long streamed answer
    expect(widget.root.locator(".msg.streaming .bubble")).to_contain_text("demo")
    # When Redis restarts while the answer streams (down ~0.3 s, back empty)
    redis_server.restart(0.3)

    # Then the server closed the socket with 4503 (as soon as its layer noticed: at once
    # when the receive connection drops, within its run_id watch when redis-py
    # reconnected silently), the widget said it was reconnecting, and came back
    widget.page.wait_for_function("() => window.__closes.includes(4503)", timeout=15_000)
    expect(widget.root.locator(".status")).to_have_text("")
    assert "Connection lost. Reconnecting…" in widget.page.evaluate("window.__statuses")
    # and it shows the stored answer without the visitor doing anything, exactly once
    expect(widget.answers()).to_have_count(2)
    expect(widget.root.locator(".msg.streaming")).to_have_count(0)
    live = widget.transcript()
    assert [line.split("|")[1] for line in live if line.startswith("msg|")] == ["user", "assistant"] * 2
    widget.page.reload()  # the server's view, drawn afresh, is the same
    expect(widget.answers()).to_have_count(2)
    assert widget.transcript() == live
