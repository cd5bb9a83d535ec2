"""PDF text extraction in a child process, bounded in pages, characters, time and memory.

A PDF is a program for a renderer: a few kilobytes can decompress to gigabytes (pypdf
stops those with `LimitReachedError`), expand to millions of characters, or take minutes
to parse. Extraction therefore runs in a child Python process (`python -m
conversations.knowledge.pdf_extract`) that reads the file on stdin and writes one JSON
object on stdout; the parent kills it when it outlives its time, and the child caps its
own address space, page count and extracted characters. Nothing here touches Django.

Child output: `{"text": ..., "title": ...}` or `{"error": <code>, "detail": ...}` with code
`encrypted`, `unreadable`, `limit` (a decompression or structure limit), `pages` or `chars`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MEMORY_LIMIT_BYTES = 1024 * 1024 * 1024
_PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class PdfLimits:
    max_pages: int
    max_chars: int
    seconds: float


class PdfRejected(Exception):
    """The PDF was refused; `code` says why (see the module docstring), plus `timeout`."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def pdf_text(data: bytes, limits: PdfLimits) -> tuple[str, str]:
    """(text, title) of a PDF, extracted by a child process within `limits`."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "conversations.knowledge.pdf_extract",
             str(limits.max_pages), str(limits.max_chars)],
            input=data, capture_output=True, timeout=limits.seconds, check=False, cwd=_PROJECT_DIR,
        )
    except subprocess.TimeoutExpired:
        raise PdfRejected("timeout") from None
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        # Killed by its memory limit, or crashed: either way the file is not usable.
        raise PdfRejected("unreadable", f"exit status {completed.returncode}") from None
    if "error" in result:
        raise PdfRejected(result["error"], result.get("detail", ""))
    return result["text"], result["title"]


def _extract(data: bytes, max_pages: int, max_chars: int) -> dict[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return {"error": "encrypted"}
        count = len(reader.pages)
        if count > max_pages:
            return {"error": "pages", "detail": str(count)}
        parts: list[str] = []
        total = 0
        for page in reader.pages:
            text = (page.extract_text() or "").strip()
            total += len(text)
            if total > max_chars:
                return {"error": "chars"}
            if text:
                parts.append(text)
        title = str((reader.metadata.get("/Title") if reader.metadata else None) or "").strip()
    except LimitReachedError as exc:
        return {"error": "limit", "detail": str(exc)[:200]}
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, MemoryError) as exc:
        return {"error": "unreadable", "detail": type(exc).__name__}
    return {"text": "\n\n".join(parts), "title": title}


def main() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    max_pages, max_chars = int(sys.argv[1]), int(sys.argv[2])
    result = _extract(sys.stdin.buffer.read(), max_pages, max_chars)
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
