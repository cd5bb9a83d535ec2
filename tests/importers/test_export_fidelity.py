"""Exports as teams cut off from the Assistants API hold them: message pages saved by
cursor in the API's default newest-first order, runs, nested thread messages, `.ndjson`
folders, the same thread in two files. Each test goes through `import_conversations`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conversations.models import Conversation, Message, Turn
from tests.importers import fake_assistants as fa
from tests.importers.conftest import run_import

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000


def _texts(external_id: str) -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(conversation__external_id=external_id)
        .order_by("seq")
        .values_list("kind", "text")
    )


def _pair_messages(thread_id: str, pairs: int) -> list[dict]:
    """Question/answer pairs, each pair within one `created_at` second, oldest first."""
    out = []
    for n in range(pairs):
        at = T0 + 60 * n
        out.append(fa.message(f"msg_p{2 * n + 1:02d}", thread_id, "user", [fa.text(f"Question {n}")], created_at=at))
        out.append(fa.message(f"msg_p{2 * n + 2:02d}", thread_id, "assistant", [fa.text(f"Answer {n}")],
                              created_at=at, run_id=f"run_{n}", assistant_id="asst_support"))
    return out


def _save_desc_pages(folder: Path, thread_id: str, messages: list[dict], size: int) -> None:
    """Save `GET /threads/{id}/messages` pages as the API answers by default (newest
    first), each file named after the cursor it was fetched with."""
    newest_first = messages[::-1]
    after = "none"
    for start in range(0, len(newest_first), size):
        data = newest_first[start : start + size]
        page = {"object": "list", "data": data, "first_id": data[0]["id"], "last_id": data[-1]["id"],
                "has_more": start + size < len(newest_first)}
        fa.validate(page, "ListMessagesResponse")
        (folder / f"{thread_id}-after-{after}.json").write_text(json.dumps(page))
        after = data[-1]["id"]


def test_newest_first_pages_named_by_cursor_import_in_conversation_order(tmp_path, demo):
    folder = tmp_path / "export"
    folder.mkdir()
    messages = _pair_messages("thread_p", 8)
    # Pages of 5 split the pairs across pages too.
    _save_desc_pages(folder, "thread_p", messages, 5)

    report = run_import(str(folder))

    expected = []
    for n in range(8):
        expected += [("user", f"Question {n}"), ("assistant", f"Answer {n}")]
    assert _texts("thread_p") == expected
    assert report["failed"] == []
    (entry,) = report["imported"]
    assert "order_inferred" not in entry  # the data decided the order


def test_a_thread_whose_order_the_data_cannot_decide_is_flagged(tmp_path, demo):
    folder = tmp_path / "export"
    folder.mkdir()
    # One page, every message in the same second: nothing in the data says which way it runs.
    messages = [
        fa.message(f"msg_s{n}", "thread_s", "user" if n % 2 == 0 else "assistant", [fa.text(f"line {n}")],
                   created_at=T0)
        for n in range(4)
    ]
    page = {"object": "list", "data": messages, "first_id": "msg_s0", "last_id": "msg_s3", "has_more": False}
    (folder / "page.json").write_text(json.dumps(page))

    report = run_import(str(folder))

    (entry,) = report["imported"]
    assert "newest first" in entry["order_inferred"]
    # Read the API's default way round (newest first), deterministically.
    assert [t for _, t in _texts("thread_s")] == ["line 3", "line 2", "line 1", "line 0"]
    assert report["summary"]["order_inferred"] == 1


def _runs_export(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    usage = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    messages = [
        fa.message("msg_1", "thread_r", "user", [fa.text("Where is order 1002?")], created_at=T0 + 1),
        fa.message("msg_2", "thread_r", "assistant", [fa.text("It is processing.")], created_at=T0 + 5,
                   run_id="run_ok", assistant_id="asst_support"),
        fa.message("msg_3", "thread_r", "user", [fa.text("Refund it")], created_at=T0 + 20),
        fa.message("msg_4", "thread_r", "user", [fa.text("Hello?")], created_at=T0 + 40),
    ]
    runs = [
        fa.run("run_ok", "thread_r", created_at=T0 + 2, usage=usage, instructions="Be kind."),
        fa.run("run_bad", "thread_r", created_at=T0 + 21, status="failed", model="gpt-4o-mini",
               usage={"prompt_tokens": 90, "completion_tokens": 0, "total_tokens": 90},
               last_error={"code": "rate_limit_exceeded", "message": "Rate limit reached."}),
        fa.run("run_wait", "thread_r", created_at=T0 + 41, status="requires_action",
               required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
                   {"id": "call_r", "type": "function",
                    "function": {"name": "issue_refund", "arguments": '{"order": "1002"}'}}]}}),
    ]
    steps = [
        fa.function_step("step_1", "thread_r", "run_ok",
                         [("call_9", "lookup_order", '{"order_number": "1002"}', '{"status": "processing"}')],
                         created_at=T0 + 3),
        fa.message_step("step_2", "thread_r", "run_ok", "msg_2", created_at=T0 + 5),
    ]
    lines = [fa.thread("thread_r", created_at=T0), *messages, *runs, *steps]
    (folder / "thread_r.jsonl").write_text("".join(json.dumps(obj) + "\n" for obj in lines))


def test_runs_import_as_turn_history_attached_to_the_message_they_answered(tmp_path, demo, admin_client):
    _runs_export(tmp_path / "export")

    report = run_import(str(tmp_path / "export"))
    again = run_import(str(tmp_path / "export"))

    assert report["failed"] == [] and again["failed"] == []
    conversation = Conversation.objects.get(external_id="thread_r")
    turns = {t.user_message.external_id: t for t in Turn.objects.filter(conversation=conversation)}
    assert Turn.objects.filter(conversation=conversation).count() == 3  # the re-run added none
    ok, bad, waiting = turns["msg_1"], turns["msg_3"], turns["msg_4"]
    assert (ok.trigger, ok.status, ok.model, ok.input_tokens, ok.output_tokens) == (
        "imported", "completed", "gpt-4o", 120, 30)
    assert (bad.status, bad.error_code, bad.model) == ("failed", "rate_limited", "gpt-4o-mini")
    assert "Rate limit reached." in bad.error_message
    assert waiting.status == "cancelled" and "requires_action" in waiting.error_message
    assert ok.imported_run.instructions == "Be kind."
    assert waiting.imported_run.required_action["submit_tool_outputs"]["tool_calls"][0]["id"] == "call_r"
    # Run steps still pair the tool call with its output, before the message the run wrote.
    assert [k for k, _ in _texts("thread_r")] == ["user", "function_call", "function_output", "assistant",
                                                   "user", "user"]
    assert report["summary"]["runs_imported"] == 3 and again["summary"]["runs_imported"] == 0

    admin_client.force_login(_superuser())
    page = admin_client.get(f"/admin/conversations/turn/{bad.pk}/change/").content.decode()
    assert "Imported run" in page and "run_bad" in page and "Rate limit reached." in page
    page = admin_client.get(f"/admin/conversations/turn/{waiting.pk}/change/").content.decode()
    assert "issue_refund" in page  # the required action the run stopped on


def _superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)


def test_nested_thread_messages_and_ndjson_folders_import(tmp_path, demo):
    folder = tmp_path / "export"
    (folder / "ndjson").mkdir(parents=True)
    nested = {**fa.thread("thread_n", created_at=T0), "messages": [
        fa.message("msg_n1", "thread_n", "user", [fa.text("Nested hello")], created_at=T0 + 1),
        fa.message("msg_n2", "thread_n", "assistant", [fa.text("Nested answer")], created_at=T0 + 2),
    ]}
    (folder / "thread_n.json").write_text(json.dumps(nested))
    # A thread with its messages as a list page under `messages`, too.
    paged = {**fa.thread("thread_m", created_at=T0), "messages": {
        "object": "list", "first_id": "msg_m2", "last_id": "msg_m1", "has_more": False, "data": [
            fa.message("msg_m2", "thread_m", "assistant", [fa.text("Paged answer")], created_at=T0 + 2),
            fa.message("msg_m1", "thread_m", "user", [fa.text("Paged hello")], created_at=T0 + 1),
        ]}}
    (folder / "thread_m.json").write_text(json.dumps(paged))
    (folder / "ndjson" / "thread_j.ndjson").write_text("".join(json.dumps(o) + "\n" for o in [
        fa.thread("thread_j", created_at=T0),
        fa.message("msg_j1", "thread_j", "user", [fa.text("From ndjson")], created_at=T0 + 1),
    ]))
    (folder / "ndjson" / "chat.ndjson").write_text(
        json.dumps({"conversation_id": "chat-1", "role": "user", "content": "Chat ndjson", "created_at": T0}) + "\n"
    )

    report = run_import(str(folder))

    assert report["failed"] == []
    assert _texts("thread_n") == [("user", "Nested hello"), ("assistant", "Nested answer")]
    assert _texts("thread_m") == [("user", "Paged hello"), ("assistant", "Paged answer")]
    assert _texts("thread_j") == [("user", "From ndjson")]
    assert _texts("chat-1") == [("user", "Chat ndjson")]


def test_the_same_thread_in_two_files_with_different_content_is_reported(tmp_path, demo):
    folder = tmp_path / "export"
    for name, region, text in (("a-2024", "eu", "Old text"), ("b-2025", "us", "Edited text")):
        (folder / "threads" / name).mkdir(parents=True)
        objects = [fa.thread("thread_c", created_at=T0, metadata={"region": region}),
                   fa.message("msg_c1", "thread_c", "user", [fa.text(text)], created_at=T0 + 1)]
        (folder / "threads" / name / "messages.json").write_text(json.dumps(objects))

    report = run_import(str(folder))

    conversation = Conversation.objects.get(external_id="thread_c")
    # One rule for both: the copy read last (files are read in path order) wins, whole.
    assert conversation.metadata["region"] == "us"
    assert _texts("thread_c") == [("user", "Edited text")]
    conflicts = sorted((c["kind"], c["id"]) for c in report["conflicts"])
    assert conflicts == [("message", "msg_c1"), ("thread", "thread_c")]
    for conflict in report["conflicts"]:
        assert conflict["origins"] == ["threads/a-2024/messages.json", "threads/b-2025/messages.json"]
        assert conflict["kept"] == "threads/b-2025/messages.json"
    assert conversation.metadata["imported_from"]["origin"] == "threads/a-2024/messages.json, threads/b-2025/messages.json"


def test_chat_messages_without_timestamps_sit_between_their_neighbours(tmp_path, demo):
    lines = [
        {"conversation_id": "c1", "role": "user", "content": "first", "created_at": T0},
        {"conversation_id": "c1", "role": "assistant", "content": "no clock"},
        {"conversation_id": "c1", "role": "user", "content": "third", "created_at": T0 + 100},
        {"conversation_id": "c1", "role": "tool", "tool_call_id": "call_nowhere", "content": "{}", "created_at": T0 + 101},
    ]
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    report = run_import(str(tmp_path / "chats.jsonl"))

    stamps = list(Message.objects.filter(conversation__external_id="c1").order_by("seq").values_list("created_at", flat=True))
    assert stamps[0] <= stamps[1] <= stamps[2]
    assert stamps[1].timestamp() == T0
    (warning,) = [w for w in report["warnings"] if "without a matching call" in w["reason"]]
    assert (warning["file"], warning["line"], warning["id"]) == ("chats.jsonl", 4, "c1")


def test_vector_store_files_become_knowledge_documents_that_imported_citations_link_to(tmp_path, demo):
    from conversations.knowledge.models import Document

    folder = tmp_path / "export"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "returns-policy.md").write_text("# Returns policy\n\nReturn anything within 30 days.\n")
    (folder / "files" / "file-Shipping42.html").write_text(
        "<html><head><title>Shipping times</title></head><body><p>Parcels ship in 2 days.</p></body></html>")
    (folder / "files" / "README.md").write_text("How we exported this.\n")  # no file id: not a vector-store file
    listing = [
        {"object": "file", "id": "file-Returns01", "bytes": 60, "created_at": T0, "filename": "returns-policy.md",
         "purpose": "assistants", "status": "processed"},
        {"id": "file-Returns01", "object": "vector_store.file", "usage_bytes": 60, "created_at": T0,
         "vector_store_id": "vs_help", "status": "completed", "last_error": None},
    ]
    fa.validate(listing[0], "OpenAIFile")
    fa.validate(listing[1], "VectorStoreFileObject")
    (folder / "files.json").write_text(json.dumps(listing))
    marker = "【4:0†returns-policy.md】"
    messages = [
        fa.message("msg_k1", "thread_k", "user", [fa.text("Can I return it?")], created_at=T0 + 1),
        fa.message("msg_k2", "thread_k", "assistant",
                   [fa.text(f"Yes, within 30 days{marker}.", [fa.citation(marker, "file-Returns01", 19)])],
                   created_at=T0 + 2),
    ]
    (folder / "thread_k.json").write_text(json.dumps(messages))

    report = run_import(str(folder))
    again = run_import(str(folder))

    assert report["failed"] == []
    returns = Document.objects.get(title="Returns policy")
    assert Document.objects.get(title="Shipping times").imported_file.file_id == "file-Shipping42"
    assert returns.imported_file.file_id == "file-Returns01"
    assert returns.imported_file.vector_store_ids == ["vs_help"]
    assert Document.objects.filter(imported_file__isnull=False).count() == 2
    assert not Document.objects.filter(source_name="README.md").exists()  # no file id: not a vector-store file
    answer = Message.objects.get(external_id="msg_k2")
    assert answer.metadata["citations"] == [{"file_id": "file-Returns01", "document": returns.pk,
                                             "title": "Returns policy"}]
    assert "[cited file file-Returns01: Returns policy]" in answer.text
    assert report["summary"]["files_imported"] == 2 and again["summary"]["files_imported"] == 0


def test_a_dry_run_writes_no_runs_or_documents_and_a_refused_file_is_reported(tmp_path, demo):
    from conversations.knowledge.models import Document

    _runs_export(tmp_path / "export")
    (tmp_path / "export" / "file-Empty01.md").write_text("   \n")
    (tmp_path / "export" / "file-Guide01.txt").write_text("Opening hours: 9 to 5.\n")

    dry = run_import(str(tmp_path / "export"), "--dry-run")

    assert not Turn.objects.exists() and not Document.objects.filter(imported_file__isnull=False).exists()
    assert dry["summary"]["runs_imported"] == 3 and dry["summary"]["files_imported"] == 1
    (refused,) = dry["failed"]
    assert (refused["kind"], refused["id"], refused["file"]) == ("file", "file-Empty01", "file-Empty01.md")

    real = run_import(str(tmp_path / "export"))

    assert real["summary"]["files_imported"] == 1 and [f["id"] for f in real["failed"]] == ["file-Empty01"]
    assert Turn.objects.filter(trigger="imported").count() == 3


def test_a_newest_first_page_with_one_skewed_clock_keeps_same_second_pairs_in_order(tmp_path, demo):
    folder = tmp_path / "export"
    folder.mkdir()
    messages = _pair_messages("thread_k", 4)
    messages[4] = {**messages[4], "created_at": T0 + 500}  # "Question 2" stamped far in the future
    page = {"object": "list", "data": messages[::-1], "first_id": messages[-1]["id"], "last_id": messages[0]["id"],
            "has_more": False}
    (folder / "page.json").write_text(json.dumps(page))

    report = run_import(str(folder))

    texts = [t for _, t in _texts("thread_k")]
    assert texts[:4] == ["Question 0", "Answer 0", "Question 1", "Answer 1"]  # pairs not swapped
    assert "neither created_at order" in report["imported"][0]["order_inferred"]
