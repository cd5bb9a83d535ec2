"""The demo help articles that `setup_demo` loads into the knowledge base (published as public help articles; idempotent:
an article whose title already exists is left as it is)."""

from __future__ import annotations

from pathlib import Path

from conversations.knowledge.models import Document
from conversations.knowledge.services import document_create

ARTICLES_DIR = Path(__file__).resolve().parent / "demo_articles"


def demo_articles_seed() -> list[str]:
    """Create the demo articles that do not exist yet; returns every demo title."""
    titles = []
    for path in sorted(ARTICLES_DIR.glob("*.md")):
        name, data = path.name, path.read_bytes()
        first_line = data.decode("utf-8").splitlines()[0]
        title = first_line.lstrip("#").strip()
        titles.append(title)
        if not Document.objects.filter(title=title).exists():
            document_create(upload=(name, data), is_public=True)
    return titles
