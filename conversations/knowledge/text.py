"""Turning an uploaded or pasted document into text, and text into passages.

Formats: Markdown and plain text are decoded as UTF-8; HTML is reduced to text with the
standard library's `html.parser` (scripts, styles and other non-content elements are
dropped, headings become Markdown headings so they still split passages, nothing is ever
rendered); PDF text is extracted with `pypdf` in a child process (`pdf_extract.py`).

Limits (hostile files): at most `MAX_UPLOAD_BYTES` in, at most `KNOWLEDGE_MAX_CHARS`
characters of text out whatever the format, and for PDFs at most `KNOWLEDGE_MAX_PDF_PAGES`
pages within `KNOWLEDGE_EXTRACT_SECONDS`. A file over a limit is an `InvalidInput` whose
message says which limit, never a server error.

Splitting: Markdown headings (`#` to `######`, outside code fences) start sections; a
section's paragraphs (blank-line separated) are packed into passages of at most
`PASSAGE_TOKENS` tokens, counted with the real tokenizer. A paragraph longer than that
is split at sentence ends, and a sentence longer than that at word boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from conversations.agent.tokens import count_tokens, get_encoding
from conversations.conf import platform_setting
from conversations.errors import InvalidInput, PayloadTooLarge
from conversations.knowledge.pdf_extract import PdfLimits, PdfRejected, pdf_text

PASSAGE_TOKENS = 300
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
ENCODING = "o200k_base"
_EXTENSIONS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class ExtractedDocument:
    source_format: str
    text: str
    title: str


@dataclass(frozen=True)
class PassageText:
    heading: str
    text: str
    tokens: int


def tokens_of(text: str) -> int:
    return count_tokens(text, get_encoding(ENCODING))


# --- Extraction ------------------------------------------------------------------------


class _HtmlToText(HTMLParser):
    """Collects readable text; block elements become line breaks, headings `#` lines."""

    SKIP = {"script", "style", "head", "template", "noscript", "svg", "iframe", "object", "canvas"}
    BLOCK = {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "ul", "ol",
        "table", "tr", "blockquote", "pre", "figure", "figcaption", "dl", "dt", "dd", "hr", "form",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title = ""
        self.first_h1 = ""
        self._in_title = False
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
            self._heading = []
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "hr":
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            if tag == "h1" and self._heading is not None and not self.first_h1:
                self.first_h1 = " ".join("".join(self._heading).split())
            self._heading = None
            self.parts.append("\n\n")
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.skipping:
            return
        if self._heading is not None:
            # A heading stays on one line so it still reads as a Markdown heading.
            data = " ".join(data.split()) + (" " if data[-1:].isspace() else "")
            self._heading.append(data)
        self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(text, title) of an HTML document. Nothing is executed or rendered."""
    parser = _HtmlToText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join(parser.title.split()) or parser.first_h1
    return text, title


def _pdf_to_text(data: bytes) -> tuple[str, str]:
    limits = PdfLimits(
        max_pages=platform_setting("KNOWLEDGE_MAX_PDF_PAGES"),
        max_chars=platform_setting("KNOWLEDGE_MAX_CHARS"),
        seconds=platform_setting("KNOWLEDGE_EXTRACT_SECONDS"),
    )
    try:
        return pdf_text(data, limits)
    except PdfRejected as exc:
        reasons = {
            "encrypted": ("The PDF is password-protected.", "encrypted PDF"),
            "pages": (f"The PDF has {exc.detail} pages; the limit is {limits.max_pages}.", "too many pages"),
            "chars": (_too_long_message(), "too much text"),
            "limit": ("The PDF expands beyond what the platform reads (a compression bomb or a "
                      "malformed file); it was not imported.", "PDF over limits"),
            "timeout": (f"Reading the PDF took longer than {limits.seconds:g} seconds; it was not "
                        "imported. Split it, or paste its text.", "PDF too slow to read"),
        }
        message, field = reasons.get(exc.code, ("The PDF could not be read.", "unreadable PDF"))
        raise InvalidInput(message, fields={"upload": field}) from None


def _too_long_message() -> str:
    return (f"The document has more than {platform_setting('KNOWLEDGE_MAX_CHARS'):,} characters of "
            "text; split it into smaller documents.")


def _decode(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def extract(name: str, data: bytes) -> ExtractedDocument:
    """Text and a suggested title from an uploaded file, by its extension."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The file is {len(data)} bytes; the limit is {MAX_UPLOAD_BYTES}.",
            fields={"upload": "file too large"},
        )
    suffix = PurePath(name).suffix.lower()
    source_format = _EXTENSIONS.get(suffix)
    if source_format is None:
        allowed = ", ".join(sorted(_EXTENSIONS))
        raise InvalidInput(
            f"Unsupported file type {suffix or '(none)'}; use one of {allowed}.",
            fields={"upload": "unsupported file type"},
        )
    title = ""
    if source_format == "pdf":
        text, title = _pdf_to_text(data)
    elif source_format == "html":
        text, title = html_to_text(_decode(data))
    else:
        text = _decode(data)
        if source_format == "markdown":
            first = next((m for m in map(_HEADING.match, text.splitlines()) if m), None)
            title = first.group(2) if first else ""
    text = text.replace("\x00", "").strip()
    if len(text) > platform_setting("KNOWLEDGE_MAX_CHARS"):
        raise InvalidInput(_too_long_message(), fields={"upload": "too much text"})
    if not text:
        raise InvalidInput(
            "No text could be extracted from the file (a scanned PDF has none).",
            fields={"upload": "no text"},
        )
    return ExtractedDocument(source_format, text, title.strip()[:200] or PurePath(name).stem[:200])


# --- Splitting -------------------------------------------------------------------------


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading path, paragraphs) in document order."""
    sections: list[tuple[str, list[str]]] = []
    path: list[tuple[int, str]] = []
    paragraph: list[str] = []
    paragraphs: list[str] = []
    in_fence = False

    def end_paragraph() -> None:
        if paragraph:
            paragraphs.append("\n".join(paragraph).strip())
            paragraph.clear()

    def end_section() -> None:
        end_paragraph()
        kept = [p for p in paragraphs if p]
        if kept:
            sections.append((" › ".join(title for _, title in path), kept))
        paragraphs.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            paragraph.append(line)
            continue
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            end_section()
            level = len(heading.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, heading.group(2).strip()))
        elif not line.strip() and not in_fence:
            end_paragraph()
        else:
            paragraph.append(line.rstrip())
    end_section()
    return sections


def _pieces(paragraph: str, cap: int) -> list[str]:
    """The paragraph, or pieces of it each within `cap` tokens."""
    if tokens_of(paragraph) <= cap:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    units = _SENTENCE_END.split(paragraph)
    for unit in units:
        if tokens_of(unit) > cap:
            words = unit.split()
            unit_parts, buf = [], ""
            for word in words:
                candidate = f"{buf} {word}".strip()
                if buf and tokens_of(candidate) > cap:
                    unit_parts.append(buf)
                    buf = word
                else:
                    buf = candidate
            if buf:
                unit_parts.append(buf)
            if current:
                pieces.append(current)
                current = ""
            pieces.extend(unit_parts[:-1])
            current = unit_parts[-1] if unit_parts else ""
            continue
        candidate = f"{current} {unit}".strip()
        if current and tokens_of(candidate) > cap:
            pieces.append(current)
            current = unit
        else:
            current = candidate
    if current:
        pieces.append(current)
    # A piece of one enormous "word" can still exceed the cap; cut it by characters.
    return [chunk for piece in pieces for chunk in _hard_cut(piece, cap)]


def _hard_cut(piece: str, cap: int) -> list[str]:
    if tokens_of(piece) <= cap:
        return [piece]
    encoding = get_encoding(ENCODING)
    ids = encoding.encode_ordinary(piece)
    return [encoding.decode(ids[i : i + cap]) for i in range(0, len(ids), cap)]


def split_passages(text: str, cap: int = PASSAGE_TOKENS) -> list[PassageText]:
    """The document's passages, in order, each within `cap` tokens of text."""
    passages: list[PassageText] = []
    for heading, paragraphs in _sections(text):
        current = ""
        for paragraph in paragraphs:
            for piece in _pieces(paragraph, cap):
                candidate = f"{current}\n\n{piece}" if current else piece
                if current and tokens_of(candidate) > cap:
                    passages.append(PassageText(heading, current, tokens_of(current)))
                    candidate = piece
                current = candidate
        if current:
            passages.append(PassageText(heading, current, tokens_of(current)))
    return passages
