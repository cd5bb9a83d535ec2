"""The widget script as served: `widget.js`, the classic loader the embed snippet names,
preloads every ES module of `static/widget/chat/`, so a module added there is fetched
with the others instead of one import level later."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "static" / "widget"


def test_the_loader_preloads_every_module_of_the_widget():
    loader = (STATIC / "widget.js").read_text()
    listed = json.loads(re.search(r"const MODULES = (\[[^\]]*\]);", loader).group(1))
    assert sorted(listed) == sorted(path.stem for path in (STATIC / "chat").glob("*.js"))
