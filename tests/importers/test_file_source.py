"""Importing from files: Assistants API exports and Chat Completions JSONL histories."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conversations.models import Conversation, Message
from tests.importers import fake_assistants as fa
from tests.importers.conftest import run_import

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000


def _items(external_id: str) -> list[tuple]:
    return list(
        Message.objects.filter(conversation__external_id=external_id)
        .order_by("seq")
        .values_list("kind", "text", "tool_name", "call_id")
    )


@pytest.fixture
def export_dir(tmp_path):
    """An export as teams made them: list pages as the API returned them (newest first by
    default), one file per thread, plus a JSONL of message objects with a bad line."""
    folder = tmp_path / "export"
    (folder / "threads").mkdir(parents=True)
    assistant = fa.assistant("asst_support", name="Support bot", instructions="Be kind.",
                             tools=[fa.function_tool("lookup_order")])
    listing = {"object": "list", "data": [assistant], "first_id": "asst_support", "last_id": "asst_support",
               "has_more": False}
    fa.validate(listing, "ListAssistantsResponse")
    (folder / "assistants.json").write_text(json.dumps(listing))
    messages = [
        fa.message("msg_1", "thread_x", "user", [fa.text("Where is order 1002?")], created_at=T0 + 1),
        fa.message("msg_2", "thread_x", "assistant", [fa.text("It is processing.")], created_at=T0 + 3,
                   run_id="run_1", assistant_id="asst_support"),
        fa.message("msg_3", "thread_x", "user", [fa.text("Thanks")], created_at=T0 + 9),
    ]
    page = {"object": "list", "data": messages[::-1], "first_id": "msg_3", "last_id": "msg_1", "has_more": False}
    fa.validate(page, "ListMessagesResponse")
    steps = [
        fa.function_step("step_1", "thread_x", "run_1",
                         [("call_9", "lookup_order", '{"order_number": "1002"}', '{"status": "processing"}')],
                         created_at=T0 + 2),
        fa.message_step("step_2", "thread_x", "run_1", "msg_2", created_at=T0 + 3),
    ]
    step_page = {"object": "list", "data": steps, "first_id": "step_1", "last_id": "step_2", "has_more": False}
    fa.validate(step_page, "ListRunStepsResponse")
    thread = fa.thread("thread_x", created_at=T0, metadata={"region": "eu"})
    (folder / "threads" / "thread_x.json").write_text(json.dumps([thread, page, step_page]))
    lines = [
        json.dumps(fa.message("msg_y1", "thread_y", "user", [fa.text("Hello")], created_at=T0 + 50)),
        '{"id": "msg_y2", "object": "thread.message", "thread_id": "thread_y", ',  # cut off mid-write
        json.dumps({"id": "note_1", "object": "note"}),
        json.dumps(fa.message("msg_y3", "thread_y", "assistant", [fa.text("Hi there")], created_at=T0 + 51)),
    ]
    (folder / "threads" / "more.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_an_assistants_export_imports_agents_threads_and_run_steps(export_dir, tmp_path, demo):
    mapping = tmp_path / "customers.json"
    mapping.write_text(json.dumps({"cust-9": "thread_x"}))

    report = run_import(str(export_dir), "--mapping", str(mapping))

    conversation = Conversation.objects.get(external_id="thread_x")
    assert (conversation.customer_id, conversation.agent.name) == ("cust-9", "Support bot")
    assert conversation.metadata["region"] == "eu"
    assert _items("thread_x") == [
        ("user", "Where is order 1002?", "", ""),
        ("function_call", "", "lookup_order", "call_9"),
        ("function_output", '{"status": "processing"}', "", "call_9"),
        ("assistant", "It is processing.", "", ""),
        ("user", "Thanks", "", ""),
    ]
    # A thread nobody mapped keeps its id as an anonymous customer, and says so.
    other = Conversation.objects.get(external_id="thread_y")
    assert (other.customer_kind, other.customer_id) == ("visitor", "thread_y")
    assert [t for _, t, _, _ in _items("thread_y")] == ["Hello", "Hi there"]
    assert report["notes"]["conversations with no known customer (kept under the thread id)"] == 1
    failed = sorted((f["file"], f["line"]) for f in report["failed"])
    assert failed == [("threads/more.jsonl", 2), ("threads/more.jsonl", 3)]  # relative to the import root


def test_a_broken_json_export_is_reported_with_its_line(tmp_path, demo):
    (tmp_path / "bad.json").write_text('{\n  "object": "list",\n  "data": [,]\n}\n')

    report = run_import(str(tmp_path / "bad.json"))

    (failure,) = report["failed"]
    assert (failure["kind"], failure["line"]) == ("file", 3)
    assert not Conversation.objects.exists()


def _chat_lines() -> list[str]:
    c100 = {"conversation_id": "c-100", "customer_id": "u-100", "customer_email": "bo@example.com"}
    return [
        json.dumps({**c100, "role": "system", "content": "You are Acme's bot."}),
        json.dumps({**c100, "role": "user", "content": "Hi, I moved to 5 Elm Street", "created_at": "2024-03-01T10:00:00Z"}),
        json.dumps({**c100, "role": "assistant", "content": None, "created_at": "2024-03-01T10:00:05Z",
                    "tool_calls": [{"id": "call_a", "type": "function",
                                    "function": {"name": "update_address", "arguments": '{"street": "5 Elm"}'}}]}),
        json.dumps({**c100, "role": "tool", "tool_call_id": "call_a", "content": "done"}),
        '{"conversation_id": "c-100", "role": "assistant", "content": "Upd',
        json.dumps({**c100, "role": "assistant", "content": "Updated your address."}),
        json.dumps({"role": "user", "content": "whose am I?"}),
        json.dumps({**c100, "role": "user", "content": [{"type": "text", "text": "Photo of the door"},
                                                       {"type": "image_url", "image_url": {"url": "data:..."}}]}),
        json.dumps({**c100, "role": "wizard", "content": "abracadabra"}),
        json.dumps({"conversation_id": "c-200", "customer_id": "u-200", "messages": [
            {"role": "user", "content": "Status of 1001?", "created_at": T0},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function",
                                                  "function": {"name": "lookup_order", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "shipped"},
            {"role": "user", "content": "And 1002?"},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function",
                                                  "function": {"name": "lookup_order", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "processing"},
        ]}),
        json.dumps({**c100, "role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "x"}}]}),
    ]


def test_chat_completions_jsonl_imports_with_tool_calls_paired_and_bad_lines_reported(tmp_path, demo):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(_chat_lines()) + "\n")

    report = run_import(str(path))

    failed = {f["line"]: f["reason"] for f in report["failed"]}
    assert sorted(failed) == [5, 7, 9, 11]
    assert failed[5].startswith("invalid JSON")
    assert "conversation_id" in failed[7]
    assert "unknown role 'wizard'" in failed[9]
    assert "has no id" in failed[11]
    assert all(f["file"] == "chats.jsonl" for f in report["failed"])
    conversation = Conversation.objects.get(external_id="c-100")
    assert (conversation.customer_id, conversation.customer_email) == ("u-100", "bo@example.com")
    assert _items("c-100") == [
        ("user", "Hi, I moved to 5 Elm Street", "", ""),
        ("function_call", "", "update_address", "call_a"),
        ("function_output", "done", "", "call_a"),
        ("assistant", "Updated your address.", "", ""),
        ("user", "Photo of the door\n\n[image not imported]", "", ""),
    ]
    first = Message.objects.filter(conversation=conversation).order_by("seq").first()
    assert first.created_at == dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC)
    # A call id used twice in one conversation still pairs each output with its own call.
    calls = [(kind, call_id) for kind, _, _, call_id in _items("c-200") if call_id]
    assert calls == [("function_call", "call_0"), ("function_output", "call_0"),
                     ("function_call", "call_0~2"), ("function_output", "call_0~2")]
    assert report["notes"]["system messages skipped (the agent's instructions replace them)"] == 1
    assert report["placeholders"] == {"image_url": 1}


def test_rerunning_a_file_imports_nothing_and_a_longer_file_only_what_is_new(tmp_path, demo):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(_chat_lines()) + "\n")
    run_import(str(path))
    before = list(Message.objects.order_by("conversation_id", "seq").values_list("pk", "seq", "text"))

    again = run_import(str(path))

    assert again["summary"]["messages_imported"] == 0 and again["summary"]["conversations_unchanged"] == 2
    assert list(Message.objects.order_by("conversation_id", "seq").values_list("pk", "seq", "text")) == before

    with path.open("a") as handle:
        handle.write(json.dumps({"conversation_id": "c-100", "role": "user", "content": "Any update?"}) + "\n")
        handle.write(json.dumps({"conversation_id": "c-300", "customer_id": "u-300", "role": "user",
                                 "content": "New here"}) + "\n")
    third = run_import(str(path))

    assert third["summary"]["conversations_updated"] == 1 and third["summary"]["conversations_created"] == 1
    assert third["summary"]["messages_imported"] == 2
    assert _items("c-100")[-1] == ("user", "Any update?", "", "")
    assert Message.objects.count() == len(before) + 2


def test_dry_run_on_files_writes_nothing(tmp_path, demo):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(_chat_lines()) + "\n")

    report = run_import(str(path), "--dry-run")

    assert report["summary"]["conversations_created"] == 2
    assert report["summary"]["messages_imported"] == 11
    assert not Conversation.objects.exists()


def test_the_report_can_go_to_a_file(tmp_path, demo):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"conversation_id": "c", "customer_id": "u", "role": "user", "content": "hi"}) + "\n")
    out, err = io.StringIO(), io.StringIO()

    call_command("import_conversations", str(path), "--report", str(tmp_path / "report.json"), stdout=out, stderr=err)

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["conversations_created"] == 1
    assert out.getvalue() == ""
    assert "1 conversation created" in err.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_is_drawn_only_on_a_terminal(tmp_path, demo):
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(_chat_lines()) + "\n")
    terminal, pipe = _Terminal(), io.StringIO()

    call_command("import_conversations", str(path), stdout=io.StringIO(), stderr=terminal)
    call_command("import_conversations", str(path), stdout=io.StringIO(), stderr=pipe)

    assert "\r[" in terminal.getvalue() and "2/2 conversations" in terminal.getvalue()
    assert "\r" not in pipe.getvalue()


def test_unusable_values_are_cleaned_or_reported(tmp_path, demo):
    lines = [
        {"conversation_id": "x" * 256, "role": "user", "content": "a key too long to keep"},
        {"conversation_id": "c-nul", "customer_id": "u", "role": "user", "content": "a\u0000b"},
        {"conversation_id": "c-empty", "customer_id": "u", "role": "system", "content": "only instructions"},
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    report = run_import(str(path))

    (failure,) = report["failed"]
    assert failure["line"] == 1 and "255" in failure["reason"]
    assert _items("c-nul") == [("user", "ab", "", "")]  # PostgreSQL refuses NUL in text
    (skipped,) = report["skipped"]
    assert (skipped["id"], skipped["reason"]) == ("c-empty", "no messages to import")
    assert not Conversation.objects.filter(external_id="c-empty").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Give export files"),
        (["x.jsonl", "--api-base-url", "http://127.0.0.1:9/v1"], "not both"),
        (["x.jsonl", "--assistant", "asst_1"], "--assistant"),
        (["--api-base-url", "http://127.0.0.1:9/v1"], "--mapping"),
    ],
)
def test_the_command_refuses_contradictory_arguments(args, message, db):
    with pytest.raises(CommandError, match=message):
        call_command("import_conversations", *args, stdout=io.StringIO(), stderr=io.StringIO())
