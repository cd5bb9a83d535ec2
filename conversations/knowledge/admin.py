"""Staff door to the knowledge base: paste or upload documents, see their passages and
which answers cited them. Thin: saving and deleting call the knowledge services, and the
changelist search box runs the same full-text search the agent's tool uses."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from conversations.errors import PlatformError
from conversations.knowledge.models import Document
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import document_delete, document_save
from conversations.knowledge.text import extract
from conversations.models import Message
from conversations.models.message import MessageKind

CITED_BY_SHOWN = 20


class DocumentForm(forms.ModelForm):
    upload = forms.FileField(
        required=False,
        help_text="Markdown (.md), plain text (.txt), HTML (.html) or PDF (.pdf). "
        "Replaces the text above; a blank title takes the file's title.",
    )

    class Meta:
        model = Document
        fields = ["title", "body", "is_active", "is_public"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["body"].required = False

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns
        upload = data.get("upload")
        if upload is not None:
            try:
                upload.seek(0)
                extract(upload.name, upload.read())
            except PlatformError as exc:
                self.add_error("upload", exc.message)
            return data
        if not (data.get("title") or "").strip():
            self.add_error("title", "A document needs a title.")
        if not (data.get("body") or "").strip():
            self.add_error("body", "Paste the text, or upload a file.")
        return data


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    form = DocumentForm

    class Media:
        css = {"all": ["admin-extra/platform.css"]}

    list_display = ["title", "source_format", "passage_count", "is_active", "is_public", "updated_at"]
    list_filter = ["is_active", "is_public", "source_format"]
    search_fields = ["title"]
    search_help_text = "Full-text search over passages, ranked as the agent's tool ranks them."
    readonly_fields = [
        "source_format", "source_name", "passage_count", "indexed_at", "passages_table", "cited_by"
    ]
    fieldsets = [
        (None, {"fields": ["title", "body", "upload", "is_active"]}),
        ("Publishing", {"fields": ["is_public", "public_page"]}),
        ("Index", {"fields": [*readonly_fields]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "public_page"]

    @admin.display(description="Public page")
    def public_page(self, obj: Document) -> str:
        """Where customers read it, and where the chat's citations of it link."""
        if obj.pk is None:
            return "Saved documents get a page once published."
        path = _public_path(obj)
        if not (obj.is_public and obj.is_active):
            return format_html(
                "{} (not served: {})", path, "internal" if not obj.is_public else "inactive"
            )
        return format_html('<a href="{}">{}</a>', path, path)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        document_save(document=obj, upload=form.cleaned_data.get("upload"))

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            document_delete(document=document)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Document], search_term: str
    ) -> tuple[QuerySet[Document], bool]:
        if not search_term.strip():
            return queryset, False
        hits = {hit.document_id for hit in knowledge_search(query=search_term, limit=100)}
        titled, _ = super().get_search_results(request, queryset, search_term)
        matching = set(titled.values_list("pk", flat=True)) | hits
        return queryset.filter(pk__in=matching), False

    @admin.display(description="Passages")
    def passages_table(self, obj: Document) -> str:
        """The passages as indexed (derived from the text on every save; read-only)."""
        if obj.pk is None:
            return "-"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td class=\"platform-pre\">{}</td><td>{}</td></tr>",
            ((p.position, p.heading, p.text, p.token_count) for p in obj.passages.all()),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>Heading</th><th>Text</th><th>Tokens</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Cited by answers")
    def cited_by(self, obj: Document) -> str:
        """The latest answers whose metadata.sources cite this document."""
        if obj.pk is None:
            return "-"
        answers = (
            Message.objects.filter(kind=MessageKind.ASSISTANT, metadata__has_key="sources")
            .order_by("-id")
            .only("id", "conversation_id", "seq", "created_at", "metadata")[:500]
        )
        citing = [
            m for m in answers
            if any(s.get("document_id") == obj.pk for s in m.metadata.get("sources", []))
        ][:CITED_BY_SHOWN]
        if not citing:
            return "No answer has cited this document yet."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "", "<li><a href=\"{}\">Conversation {} · item #{}</a> ({})</li>",
                (
                    (_conversation_url(m.conversation_id), str(m.conversation_id)[:8], m.seq,
                     m.created_at.strftime("%Y-%m-%d %H:%M"))
                    for m in citing
                ),
            ),
        )


def _public_path(document: Document) -> str:
    # The page is the widget door's (`conversations/widget/help.py`); named, not imported.
    try:
        return reverse("help-article", kwargs={"document_id": document.pk, "slug": document.slug})
    except NoReverseMatch:
        return "-"


def _conversation_url(conversation_id: Any) -> str:
    try:
        return reverse("admin:conversations_conversation_change", args=[conversation_id])
    except NoReverseMatch:
        return "#"
