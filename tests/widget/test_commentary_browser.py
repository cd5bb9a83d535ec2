"""Commentary in the widget, in a real browser: the model's "Let me check" (`phase:
commentary`) shows as a muted progress line while the turn runs and never becomes an
answer bubble. The offline model is told by `SUPPORT_MODEL_CAPABILITIES_JSON` that it
is a model that uses `phase`, so it comments before its tool calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.widget import test_browser
from tests.widget.server import DaphneServer
from tests.widget.test_browser import ROOT, Widget, expect

pytestmark = test_browser.pytestmark  # browser, slow, skipped without chromium




@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    daphne = DaphneServer(
        tmp_path_factory.mktemp("widget-commentary-server"),
        env={
            "SUPPORT_OFFLINE_WORD_DELAY": "0.04",
            "SUPPORT_MODEL_CAPABILITIES_JSON": json.dumps({"offline-support": {"phase": True}}),
        },
    )
    daphne.prepare()
    daphne.start()
    yield daphne
    daphne.stop()


def test_commentary_is_progress_and_never_an_answer(server: DaphneServer, context: Any) -> None:
    widget = Widget.visit(context, server)
    widget.open()
    widget.page.evaluate(f"""() => {{
        window.__commentary = [];
        new MutationObserver(() => {{
            const c = {ROOT}.querySelector('.log > li.commentary');
            if (c) window.__commentary.push(c.textContent);
        }}).observe({ROOT}, {{subtree: true, childList: true, characterData: true}});
    }}""")

    widget.send("Where is order 1001? My email is ada@example.com")

    expect(widget.answers()).to_have_count(1)
    expect(widget.answers().first).to_contain_text("Order 1001 is shipped")
    seen = widget.page.evaluate("window.__commentary")
    assert seen and seen[-1] == "Let me check that for you."  # shown while the turn ran
    expect(widget.root.locator(".log > li.commentary")).to_have_count(0)  # gone with the turn's draft
    for line in widget.transcript():
        assert "Let me check" not in line
    widget.page.reload()
    expect(widget.answers()).to_have_count(1)
    assert all("Let me check" not in line for line in widget.transcript())
