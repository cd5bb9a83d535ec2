"""Tool calls through the real SDK: one call, parallel calls running concurrently, a
multi-round loop, and every way a call can go wrong becoming an output the model can
recover from while the turn goes on."""

from __future__ import annotations

import json
import threading

import pytest

from conversations.models import Turn
from tests.engine.support import answered, ask, items_of, kinds, outputs_by_call
from tests.fake_provider import calls, text
from tools.registry import ToolContext

pytestmark = pytest.mark.django_db(transaction=True)

ADA_1001 = {"order_number": "1001", "email": "ada@example.com"}


def _outputs(request: dict) -> list[dict]:
    return [item for item in request["input"] if item.get("type") == "function_call_output"]


def test_one_tool_call_feeds_its_output_into_the_next_round(conversation, provider):
    # Given a model that looks the order up, then answers
    provider.queue(calls(("lookup_order", ADA_1001)), text("Order 1001 has shipped."))

    # When the customer asks about it
    turn = answered(ask(conversation, "Where is order 1001? ada@example.com"))

    # Then the tool ran, its output went back to the model, and all items are stored in order
    assert turn.status == "completed", turn.error_message
    assert kinds(conversation) == ["user", "function_call", "function_output", "assistant"]
    (call,) = items_of(conversation, "function_call")
    (output,) = items_of(conversation, "function_output")
    assert call.tool_name == "lookup_order" and json.loads(call.tool_arguments) == ADA_1001
    assert output.call_id == call.call_id and output.metadata == {"ok": True}
    assert json.loads(output.text)["status"] == "shipped"
    first, second = provider.requests
    assert first["stream"] is True and first["store"] is False
    assert {t["name"] for t in first["tools"]} == set(conversation.agent.tools)
    assert all(t["strict"] for t in first["tools"])
    assert second["input"][-2]["type"] == "function_call" and second["input"][-2]["call_id"] == call.call_id
    assert second["input"][-1] == {"type": "function_call_output", "call_id": call.call_id, "output": output.text}
    assert turn.tool_rounds == 1 and len(turn.requests) == 2 == len(turn.response_ids)
    assert turn.requests == provider.requests


def test_parallel_calls_run_at_the_same_time(conversation, provider, register_tool):
    # Given two tools that can only both finish if they run concurrently
    both_started = threading.Barrier(2, timeout=5)
    log: list[str] = []

    def first_slow_step(context: ToolContext, label: str) -> str:
        """A step that waits for its sibling.

        Args:
            label: Any label.
        """
        log.append(f"start {label}")
        both_started.wait()
        log.append(f"end {label}")
        return f"{label} done"

    def second_slow_step(context: ToolContext, label: str) -> str:
        """Another step that waits for its sibling.

        Args:
            label: Any label.
        """
        return first_slow_step(context, label)

    register_tool(first_slow_step)
    register_tool(second_slow_step)
    provider.queue(
        calls(("first_slow_step", {"label": "a"}), ("second_slow_step", {"label": "b"})),
        text("Both done."),
    )

    # When the model asks for both in one round
    turn = answered(ask(conversation, "Do both things."))

    # Then both started before either finished, and both succeeded
    assert turn.status == "completed", turn.error_message
    assert sorted(log[:2]) == ["start a", "start b"]
    outputs = [item["output"] for item in _outputs(provider.requests[1])]
    assert outputs == ["a done", "b done"]
    assert provider.requests[0]["parallel_tool_calls"] is True


def test_a_multi_round_tool_loop_keeps_every_round(conversation, provider):
    # Given a model that needs two rounds of tools before it answers
    provider.queue(
        calls(("lookup_order", ADA_1001)),
        calls(("lookup_order", {"order_number": "1003", "email": "ada@example.com"})),
        text("1001 shipped and 1003 was delivered."),
    )

    turn = answered(ask(conversation, "What about my orders 1001 and 1003? ada@example.com"))

    assert turn.status == "completed", turn.error_message
    assert kinds(conversation) == [
        "user", "function_call", "function_output", "function_call", "function_output", "assistant",
    ]
    assert turn.tool_rounds == 2 and len(provider.requests) == 3
    third = provider.requests[2]["input"]
    assert [i["type"] for i in third[-4:]] == [
        "function_call", "function_call_output", "function_call", "function_call_output",
    ]
    statuses = [json.loads(o["output"])["status"] for o in _outputs(provider.requests[2])]
    assert statuses == ["shipped", "delivered"]


def test_the_tool_round_limit_fails_the_turn(conversation, provider, agent):
    agent.max_tool_rounds = 1
    agent.save(update_fields=["max_tool_rounds"])
    provider.queue(calls(("lookup_order", ADA_1001)), calls(("lookup_order", ADA_1001)))

    turn = answered(ask(conversation, "Loop forever"))

    assert turn.status == "failed" and turn.error_code == "tool_rounds"
    assert kinds(conversation) == ["user"]
    assert len(provider.requests) == 2


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"order_number": "1001", ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"order_number": 1001, "email": None}, "1001 is not of type 'string'"),
        ({"order_number": "1001"}, "'email' is a required property"),
        ({"order_number": "1001", "email": None, "admin": True}, "Additional properties"),
    ],
    ids=["malformed-json", "not-an-object", "wrong-type", "missing-field", "extra-field"],
)
def test_invalid_arguments_become_an_output_and_the_turn_goes_on(conversation, provider, arguments, expected):
    # Given a model that sends arguments the tool cannot take
    provider.queue(calls(("lookup_order", arguments)), text("Could you give me the order number again?"))

    turn = answered(ask(conversation, "Where is my order?"))

    # Then the model is told what was wrong, and answers in the next round
    assert turn.status == "completed", turn.error_message
    (output,) = items_of(conversation, "function_output")
    assert output.text.startswith("Error: invalid arguments for lookup_order") and expected in output.text
    assert output.metadata == {"ok": False}
    assert _outputs(provider.requests[1])[0]["output"] == output.text
    assert items_of(conversation, "assistant")[0].text == "Could you give me the order number again?"


@pytest.mark.parametrize("name", ["drop_all_tables", "unregistered_but_plausible"])
def test_an_unknown_tool_becomes_an_output_naming_the_real_tools(conversation, provider, name):
    provider.queue(calls((name, {})), text("Sorry, I cannot do that."))

    turn = answered(ask(conversation, "Delete everything"))

    assert turn.status == "completed", turn.error_message
    (output,) = outputs_by_call(conversation).values()
    assert f"there is no tool named {name!r}" in output
    assert "handoff_to_human, lookup_order" in output


def test_a_registered_tool_the_agent_has_not_enabled_is_unknown_to_it(conversation, provider, register_tool, agent):
    def secret_admin_tool(context: ToolContext) -> str:
        """Not for this agent."""
        raise AssertionError("must not run")

    register_tool(secret_admin_tool)
    agent.tools = ["lookup_order"]
    agent.save(update_fields=["tools"])
    provider.queue(calls(("secret_admin_tool", {})), text("No."))

    turn = answered(ask(conversation, "Run the admin tool"))

    assert turn.status == "completed"
    (output,) = outputs_by_call(conversation).values()
    assert "no tool named 'secret_admin_tool'" in output


def test_a_tool_that_times_out_becomes_an_output(conversation, provider, register_tool, gates):
    gate = gates()

    def stuck_lookup(context: ToolContext) -> str:
        """Never answers in time."""
        gate.wait(10)
        return "too late"

    register_tool(stuck_lookup, timeout=0.2)
    provider.queue(calls(("stuck_lookup", {})), text("That system is slow right now."))

    turn = answered(ask(conversation, "Check the slow system"))

    assert turn.status == "completed", turn.error_message
    (output,) = outputs_by_call(conversation).values()
    assert output == "Error: stuck_lookup did not finish within 0.2 seconds."


def test_a_tool_that_raises_becomes_an_output_without_leaking_details(conversation, provider, register_tool):
    def broken_lookup(context: ToolContext) -> str:
        """Always fails."""
        raise RuntimeError("password=hunter2 at db-internal:5432")

    register_tool(broken_lookup)
    provider.queue(calls(("broken_lookup", {})), text("I could not check that."))

    turn = answered(ask(conversation, "Check it"))

    assert turn.status == "completed", turn.error_message
    (output,) = outputs_by_call(conversation).values()
    assert output.startswith("Error: broken_lookup failed (RuntimeError)")
    assert "hunter2" not in output and "hunter2" not in json.dumps(Turn.objects.get().requests)
