"""`Document` (a help article as staff entered or uploaded it) and `Passage` (one
searchable piece of it). Passages are derived data: `services.document_save` rewrites
them, and the full-text index with them, whenever the document changes.

`MessageIndexEntry` is PostgreSQL's full-text index of conversation items (a stored
tsvector per item, keyed by conversation and seq); on SQLite the FTS5 table
`knowledge_message_fts` plays that role and this table stays empty."""

from __future__ import annotations

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils.text import slugify


class SourceFormat(models.TextChoices):
    PASTE = "paste", "Pasted text"
    MARKDOWN = "markdown", "Markdown file"
    TEXT = "text", "Plain-text file"
    HTML = "html", "HTML file"
    PDF = "pdf", "PDF file"


def article_slug(title: str) -> str:
    """The readable part of a help article's public URL."""
    return slugify(title)[:80].strip("-") or "article"


class Document(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(
        help_text="The article as text. Markdown headings (#, ##) start new passages."
    )
    source_format = models.CharField(
        max_length=10, choices=SourceFormat.choices, default=SourceFormat.PASTE
    )
    source_name = models.CharField(
        max_length=255, blank=True, help_text="File name of the last upload, if any."
    )
    is_active = models.BooleanField(
        default=True, help_text="Only active documents are searched."
    )
    is_public = models.BooleanField(
        default=False,
        help_text="Published as a public help article (a page customers can open; the chat "
        "links its citations there). Off: internal, searched by the assistant but never "
        "shown or linked. New and imported documents start internal.",
    )
    passage_count = models.PositiveIntegerField(default=0, editable=False)
    indexed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def slug(self) -> str:
        """The readable part of the public URL, from the title ("article" when the title
        has no letters slugify keeps). Not stored: the id finds the document, so a
        renamed article keeps its links (the old slug redirects)."""
        return article_slug(self.title)


class Passage(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="passages")
    position = models.PositiveIntegerField()
    # The document's title when indexed; kept here so one row is one searchable unit.
    title = models.CharField(max_length=200)
    heading = models.CharField(max_length=300, blank=True)
    text = models.TextField()
    token_count = models.PositiveIntegerField(default=0)
    # float32, L2-normalised; only with optional semantic ranking switched on.
    embedding = models.BinaryField(null=True, editable=False)

    class Meta:
        ordering = ["document", "position"]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="passage_position_unique")
        ]

    def __str__(self) -> str:
        return f"{self.title} #{self.position}"


class MessageIndexEntry(models.Model):
    message = models.OneToOneField(
        "conversations.Message", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    conversation_id = models.UUIDField()
    seq = models.PositiveIntegerField()
    vector = SearchVectorField(null=True)

    class Meta:
        indexes = [models.Index(fields=["conversation_id", "seq"], name="knowledge_msgidx_conv_seq")]

    def __str__(self) -> str:
        return f"index of message {self.message_id}"


class MessageEmbedding(models.Model):
    """The semantic index of conversation items: one L2-normalised float32 vector per
    item (bytes, so SQLite and PostgreSQL store it alike; no vector extension needed),
    written by a background step after the item's transaction commits
    (`history_semantic`), never on the answer's path. `commitment` marks assistant or
    staff items that promise something (a refund, a call, a replacement), which
    follow-up questions ("did what you promised happen?") are matched against; `tried`
marks customer items that say what they already did ("I already restarted the router"),
for questions such as "remember what I'd done on my side?".
    Rows are read per conversation in `id` order, so a process's cache of a
    conversation's vectors is brought up to date with one small query."""

    id = models.BigAutoField(primary_key=True)
    message = models.OneToOneField("conversations.Message", on_delete=models.CASCADE, related_name="+")
    conversation_id = models.UUIDField()
    seq = models.PositiveIntegerField()
    model = models.CharField(max_length=80)
    commitment = models.BooleanField(default=False)
    tried = models.BooleanField(default=False)
    vector = models.BinaryField()

    class Meta:
        indexes = [models.Index(fields=["conversation_id", "id"], name="knowledge_msgemb_conv_id")]

    def __str__(self) -> str:
        return f"embedding of message {self.message_id}"
