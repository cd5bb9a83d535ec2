"""Links from imported objects to what they became, so a re-run finds them.

`ImportedConversation` is unique on (source, external id): two imports of the same
thread, even concurrent ones, end up in one conversation (the loser's transaction rolls
back on the constraint). Its `cursor` is the id of the last source message imported,
which lets the API source ask only for newer messages. `ImportedAssistant` remembers
which `Agent` an assistant became, so a re-run neither duplicates nor overwrites it.
`ImportedRun` is an Assistants run kept as history: the finished `Turn` (trigger
"imported") it became, with what a turn has no field for (the run's instructions, its
`required_action`, `last_error`, and the run object itself); unique per conversation
and run id, so a re-run adds no second turn.
"""

from __future__ import annotations

from django.db import models


class ImportSource(models.TextChoices):
    ASSISTANTS = "assistants", "Assistants API thread"
    CHAT = "chat", "Chat Completions history"


class ImportedAssistant(models.Model):
    assistant_id = models.CharField(max_length=255, unique=True)
    agent = models.ForeignKey(
        "conversations.Agent", on_delete=models.CASCADE, related_name="imported_from"
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.assistant_id} -> {self.agent}"


class ImportedConversation(models.Model):
    source = models.CharField(max_length=12, choices=ImportSource.choices)
    external_id = models.CharField(max_length=255)
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="import_link"
    )
    cursor = models.CharField(
        max_length=255, blank=True, help_text="Last source message id imported (API source)."
    )
    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="imported_conversation_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class ImportedRun(models.Model):
    turn = models.OneToOneField("conversations.Turn", on_delete=models.CASCADE, related_name="imported_run")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="imported_runs"
    )
    run_id = models.CharField(max_length=255)
    status = models.CharField(max_length=20, help_text="The run's own status at the source.")
    instructions = models.TextField(blank=True)
    required_action = models.JSONField(null=True, blank=True)
    last_error = models.JSONField(null=True, blank=True)
    run = models.JSONField(default=dict, blank=True, help_text="The run object as exported.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "run_id"], name="imported_run_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run_id} -> {self.turn_id}"


class ImportedFile(models.Model):
    """An exported vector-store file that became a knowledge-base document, under its
    original file id, so imported `file_citation` annotations can link to it."""

    file_id = models.CharField(max_length=255, unique=True)
    document = models.OneToOneField(
        "knowledge.Document", on_delete=models.CASCADE, related_name="imported_file"
    )
    filename = models.CharField(max_length=255, blank=True)
    vector_store_ids = models.JSONField(default=list, blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.file_id} -> {self.document_id}"
