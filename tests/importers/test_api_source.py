"""Importing from an Assistants-compatible API (a spec-shaped fake over real HTTP)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conversations.importers.models import ImportedAssistant, ImportedConversation
from conversations.models import Agent, Conversation, Message
from tests.importers import fake_assistants as fa
from tests.importers.conftest import api_args, run_import

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000


def _support_thread(api: fa.FakeAssistantsApi, thread_id: str = "thread_a") -> None:
    """A conversation with a tool call, a citation, an image, an attachment and an image URL."""
    answer = "Order 1001 has shipped【4:0†source】."
    api.add_thread(
        fa.thread(thread_id, created_at=T0, metadata={"plan": "gold"}),
        messages=[
            fa.message("msg_1", thread_id, "user", [fa.text("Where is my order 1001?")], created_at=T0 + 10),
            fa.message(
                "msg_2", thread_id, "assistant",
                [fa.text(answer, [fa.citation("【4:0†source】", "file-policy", answer.index("【"))])],
                created_at=T0 + 12, run_id="run_1", assistant_id="asst_support",
            ),
            fa.message("msg_3", thread_id, "user", [fa.text("Here is the box"), fa.image_file("file-img1")],
                       created_at=T0 + 20),
            fa.message("msg_4", thread_id, "user", [fa.text("and the invoice")], created_at=T0 + 21,
                       attachments=[{"file_id": "file-doc1", "tools": [{"type": "file_search"}]}]),
            fa.message("msg_5", thread_id, "assistant",
                       [fa.text("Thanks, that looks damaged."), fa.image_url("https://cdn.example.com/x.png")],
                       created_at=T0 + 30, run_id="run_2", assistant_id="asst_support"),
        ],
        steps=[
            fa.function_step("step_1", thread_id, "run_1",
                             [("call_1", "lookup_order", '{"order_number": "1001"}', '{"status": "shipped"}')],
                             created_at=T0 + 11),
            fa.message_step("step_2", thread_id, "run_1", "msg_2", created_at=T0 + 12),
            fa.message_step("step_3", thread_id, "run_2", "msg_5", created_at=T0 + 30),
        ],
    )


def _assistant(api: fa.FakeAssistantsApi) -> None:
    api.add_assistant(fa.assistant(
        "asst_support", name="Support bot", model="gpt-4o", instructions="Be kind.", temperature=0.3,
        tools=[fa.function_tool("lookup_order"), fa.function_tool("issue_refund"), {"type": "file_search"},
               {"type": "code_interpreter"}],
        vector_stores=["vs_policies"],
    ))


@pytest.fixture
def mapping(tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,thread_id,customer_email\n"
        "cust-1,thread_a,ada@example.com\n"
        "cust-2,thread_big,\n"
        "cust-3,thread_gone,\n"
        "cust-4,thread_slow,\n"
    )
    return path


def _big_thread(api: fa.FakeAssistantsApi, count: int = 1000) -> None:
    api.add_thread(fa.thread("thread_big", created_at=T0), messages=[
        fa.message(f"msg_big_{i:04d}", "thread_big", "user" if i % 2 == 0 else "assistant",
                   [fa.text(f"message number {i}")], created_at=T0 + i)
        for i in range(count)
    ])


def _slow_thread(api: fa.FakeAssistantsApi) -> None:
    api.add_thread(fa.thread("thread_slow", created_at=T0), messages=[
        fa.message("msg_s1", "thread_slow", "user", [fa.text("hello?")], created_at=T0 + 1),
    ])


def test_assistant_becomes_an_agent_and_its_tools_are_matched_or_reported(assistants_api, mapping, demo):
    _assistant(assistants_api)

    report = run_import(*api_args(assistants_api, mapping, "--assistant", "asst_support"))

    agent = ImportedAssistant.objects.get(assistant_id="asst_support").agent
    assert (agent.name, agent.model, agent.instructions, agent.temperature) == ("Support bot", "gpt-4o", "Be kind.", 0.3)
    # file_search maps to the knowledge base tool now that the registry has it
    assert agent.tools == ["lookup_order", "search_knowledge_base"]
    assert report["tools"]["matched"] == ["lookup_order", "search_knowledge_base"]
    needed = report["tools"]["needs_implementation"]
    assert set(needed) == {"issue_refund", "code_interpreter (no built-in equivalent; write a function tool)"}
    (pointer,) = report["tools"]["knowledge_base"]
    assert "knowledge base" in pointer["action"] and "vs_policies" in pointer["action"]
    # Imported again: found, not duplicated, not overwritten.
    agent.instructions = "Edited by staff."
    agent.save()
    again = run_import(*api_args(assistants_api, mapping, "--assistant", "asst_support"))
    assert Agent.objects.filter(imported_from__assistant_id="asst_support").count() == 1
    assert Agent.objects.get(pk=agent.pk).instructions == "Edited by staff."
    assert again["summary"]["agents_created"] == 0


def test_thread_becomes_an_imported_conversation_with_items_in_original_order(assistants_api, mapping, demo):
    _assistant(assistants_api)
    _support_thread(assistants_api)

    report = run_import(*api_args(assistants_api, mapping, "--assistant", "asst_support", "--run-steps"))

    conversation = Conversation.objects.get(external_id="thread_a")
    assert conversation.channel == "imported"
    assert (conversation.customer_id, conversation.customer_email) == ("cust-1", "ada@example.com")
    assert conversation.metadata["plan"] == "gold"
    assert conversation.agent.name == "Support bot"
    assert conversation.created_at == dt.datetime.fromtimestamp(T0, tz=dt.UTC)
    items = list(Message.objects.filter(conversation=conversation).order_by("seq"))
    assert [(m.seq, m.kind, m.external_id) for m in items] == [
        (1, "user", "msg_1"),
        (2, "function_call", "step_1/call_1#call"),
        (3, "function_output", "step_1/call_1#output"),
        (4, "assistant", "msg_2"),
        (5, "user", "msg_3"),
        (6, "user", "msg_4"),
        (7, "assistant", "msg_5"),
    ]
    call, output = items[1], items[2]
    assert (call.call_id, call.tool_name, json.loads(call.tool_arguments)) == ("call_1", "lookup_order", {"order_number": "1001"})
    assert (output.call_id, output.text) == ("call_1", '{"status": "shipped"}')
    assert items[0].created_at == dt.datetime.fromtimestamp(T0 + 10, tz=dt.UTC)
    assert items[3].text == "Order 1001 has shipped[cited file file-policy]."
    assert items[4].text == "Here is the box\n\n[image file-img1 not imported]"
    assert items[5].text == "and the invoice\n\n[attached file file-doc1 not imported]"
    assert "[image https://cdn.example.com/x.png not imported]" in items[6].text
    assert all(m.token_count > 0 for m in items)
    assert report["placeholders"] == {"attachment": 1, "file_citation": 1, "image_file": 1, "image_url": 1}
    entry = next(e for e in report["imported"] if e["id"] == "thread_a")
    assert entry["messages"] == 5 and entry["items"] == 7


def test_a_1000_message_thread_is_paged_with_after_in_ascending_order(assistants_api, mapping, demo):
    _big_thread(assistants_api)

    run_import(*api_args(assistants_api, mapping))

    conversation = Conversation.objects.get(external_id="thread_big")
    texts = list(conversation.messages.order_by("seq").values_list("text", flat=True))
    assert texts == [f"message number {i}" for i in range(1000)]
    pages = assistants_api.seen("/threads/thread_big/messages")
    assert len(pages) == 10
    assert all(p.query["order"] == "asc" and p.query["limit"] == "100" for p in pages)
    assert "after" not in pages[0].query
    assert [p.query["after"] for p in pages[1:]] == [f"msg_big_{i:04d}" for i in range(99, 999, 100)]
    assert pages[0].headers["openai-beta"] == "assistants=v2"


def test_a_deleted_thread_is_reported_and_the_others_still_import(assistants_api, mapping, demo):
    _support_thread(assistants_api)
    _slow_thread(assistants_api)

    report = run_import(*api_args(assistants_api, mapping))

    failed = {f["id"]: f["reason"] for f in report["failed"]}
    assert "404" in failed["thread_gone"] and "thread_big" in failed
    assert set(Conversation.objects.values_list("external_id", flat=True)) == {"thread_a", "thread_slow"}


def test_a_429_is_retried_after_the_retry_after_it_names(assistants_api, mapping, demo):
    _slow_thread(assistants_api)
    assistants_api.fail_once("/threads/thread_slow/messages", 429, {"retry-after": "0.6"})

    report = run_import(*api_args(assistants_api, mapping))

    first, second = assistants_api.seen("/threads/thread_slow/messages")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.6
    assert Conversation.objects.get(external_id="thread_slow").messages.count() == 1
    assert "thread_slow" not in {f["id"] for f in report["failed"]}


def test_a_rerun_imports_nothing_and_an_updated_thread_brings_only_its_new_messages(assistants_api, mapping, demo):
    _support_thread(assistants_api)

    run_import(*api_args(assistants_api, mapping, "--run-steps"))
    again = run_import(*api_args(assistants_api, mapping, "--run-steps"))

    assert again["summary"]["messages_imported"] == 0
    assert again["summary"]["conversations_unchanged"] == 1
    conversation = Conversation.objects.get(external_id="thread_a")
    assert conversation.messages.count() == 7
    assert ImportedConversation.objects.get(conversation=conversation).cursor == "msg_5"
    # Only newer messages are asked for.
    assert assistants_api.seen("/threads/thread_a/messages")[-1].query["after"] == "msg_5"

    assistants_api.messages["thread_a"].append(
        fa.message("msg_6", "thread_a", "user", [fa.text("Any news?")], created_at=T0 + 100)
    )
    third = run_import(*api_args(assistants_api, mapping, "--run-steps"))

    assert third["summary"]["conversations_updated"] == 1 and third["summary"]["messages_imported"] == 1
    newest = conversation.messages.order_by("-seq").first()
    assert (newest.seq, newest.external_id, newest.text) == (8, "msg_6", "Any news?")


def test_an_in_progress_message_waits_for_a_later_run(assistants_api, mapping, demo):
    _slow_thread(assistants_api)
    assistants_api.messages["thread_slow"].append(
        fa.message("msg_s2", "thread_slow", "assistant", [fa.text("Let me ch")], created_at=T0 + 2,
                   status="in_progress", run_id="run_x")
    )

    run_import(*api_args(assistants_api, mapping))
    assert list(Message.objects.filter(conversation__external_id="thread_slow").values_list("external_id", flat=True)) == ["msg_s1"]

    assistants_api.messages["thread_slow"][-1] = fa.message(
        "msg_s2", "thread_slow", "assistant", [fa.text("Let me check.")], created_at=T0 + 2, run_id="run_x"
    )
    run_import(*api_args(assistants_api, mapping))
    texts = list(Message.objects.filter(conversation__external_id="thread_slow").order_by("seq").values_list("text", flat=True))
    assert texts == ["hello?", "Let me check."]


def test_dry_run_reports_what_would_happen_and_writes_nothing(assistants_api, mapping, demo):
    _assistant(assistants_api)
    _support_thread(assistants_api)

    report = run_import(*api_args(assistants_api, mapping, "--assistant", "asst_support", "--run-steps", "--dry-run"))

    assert report["dry_run"] is True
    assert report["summary"]["agents_created"] == 1
    entry = next(e for e in report["imported"] if e["id"] == "thread_a")
    assert entry["reason"] == "new conversation, 5 messages would be imported"
    assert not Conversation.objects.filter(channel="imported").exists()
    assert not ImportedAssistant.objects.exists()


def test_threads_are_fetched_with_bounded_concurrency(assistants_api, tmp_path, demo):
    for i in range(8):
        assistants_api.add_thread(fa.thread(f"thread_{i}"), messages=[
            fa.message(f"msg_{i}", f"thread_{i}", "user", [fa.text("hi")], created_at=T0)
        ])
    assistants_api.delay = 0.05
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({f"cust-{i}": f"thread_{i}" for i in range(8)}))

    report = run_import(*api_args(assistants_api, mapping, "--concurrency", "2"))

    assert report["summary"]["conversations_created"] == 8
    assert assistants_api.max_in_flight == 2


def test_runs_from_an_assistants_compatible_api_become_imported_turns(assistants_api, mapping, demo):
    from conversations.models import Turn

    _support_thread(assistants_api)
    usage = {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}
    assistants_api.runs[("thread_a", "run_1")] = fa.run("run_1", "thread_a", created_at=T0 + 11, usage=usage)
    # run_2's object is gone (404): its message and steps still import, and it is noted.

    report = run_import(*api_args(assistants_api, mapping, "--run-steps"))
    again = run_import(*api_args(assistants_api, mapping, "--run-steps"))

    (turn,) = Turn.objects.filter(conversation__external_id="thread_a")
    assert (turn.trigger, turn.status, turn.user_message.external_id, turn.input_tokens) == (
        "imported", "completed", "msg_1", 50)
    assert report["summary"]["runs_imported"] == 1 and again["summary"]["runs_imported"] == 0
    assert report["notes"]["runs not found (404)"] == 1
    assert not [f for f in report["failed"] if f["id"] == "thread_a"]
