"""Requests follow the model, not the agent's form (issue 15, finding 1).

Through the real SDK against the fake provider, which answers 400 like the real API
to sampling parameters on reasoning models and to reasoning items passed back without
their encrypted content. Also: every family in the capability table builds a request
the vendored `CreateResponse` schema accepts and the table's own rules allow, and an
agent whose settings its model cannot take is refused at save."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conversations.agent import capabilities
from conversations.agent.plan import TurnPlan, turn_plan_load
from conversations.console.agents import agent_save
from conversations.errors import InvalidInput
from conversations.models import Agent
from tests.engine.support import answered, ask
from tests.fake_provider import calls, text
from tests.spec.openai_schema import assert_valid_request

pytestmark = pytest.mark.django_db(transaction=True)

ADA_1001 = {"order_number": "1001", "email": "ada@example.com"}


def _set(agent: Agent, **fields: Any) -> Agent:
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.save(update_fields=list(fields))  # a row as it may exist: not through agent_save
    return agent


def test_a_reasoning_model_with_a_blank_effort_gets_no_temperature_and_its_reasoning_back(
    conversation, provider, agent
):
    _set(agent, model="gpt-5-mini", reasoning_effort="", temperature=0.7)
    provider.queue(calls(("lookup_order", ADA_1001), reasoning="gAAAA-thoughts"), text("It shipped."))

    turn = answered(ask(conversation, "Where is 1001? ada@example.com"))

    assert turn.status == "completed", turn.error_message
    first, second = provider.requests
    assert "temperature" not in first and "top_p" not in first
    assert first["include"] == ["reasoning.encrypted_content"]
    assert "reasoning" not in first  # blank = the model's own default effort
    passed = [item for item in second["input"] if item["type"] == "reasoning"]
    assert [item["encrypted_content"] for item in passed] == ["gAAAA-thoughts"]


def test_a_reasoning_item_without_encrypted_content_is_never_passed_back(conversation, provider, agent, settings):
    # A model the table does not know as reasoning (here: overridden) still returns one.
    _set(agent, model="gpt-5-mini", model_capabilities={"reasoning": False, "sampling": []})
    provider.queue(calls(("lookup_order", ADA_1001), reasoning="gAAAA-never-returned"), text("It shipped."))

    turn = answered(ask(conversation, "Where is 1001? ada@example.com"))

    assert turn.status == "completed", turn.error_message
    second = provider.requests[1]
    assert not [item for item in second["input"] if item["type"] == "reasoning"]
    call = next(item for item in second["input"] if item["type"] == "function_call")
    assert "id" not in call  # it no longer points at the reasoning it followed


@pytest.mark.parametrize(
    ("model", "effort", "temperature", "sent_effort", "sent_temperature"),
    [
        ("gpt-5.2", "xhigh", None, "xhigh", False),
        ("gpt-5.1", "none", 0.3, "none", True),
        ("gpt-5.1", "", 0.3, None, True),  # 5.1's default effort is none: sampling allowed
        ("gpt-4.1-mini", "", 0.3, None, True),
        ("o4-mini", "high", None, "high", False),
    ],
)
def test_effort_and_sampling_as_each_model_takes_them(
    conversation, provider, agent, model, effort, temperature, sent_effort, sent_temperature
):
    agent_save(agent=_set(agent, model=model, reasoning_effort=effort, temperature=temperature), make_default=True)

    turn = answered(ask(conversation, "Hello"))

    assert turn.status == "completed", turn.error_message
    body = provider.requests[0]
    assert (body.get("reasoning") or {}).get("effort") == sent_effort
    assert ("temperature" in body) is sent_temperature


@pytest.mark.parametrize(
    ("model", "fields", "field", "words"),
    [
        ("gpt-5-mini", {"temperature": 0.7}, "temperature", "does not accept a temperature"),
        ("gpt-5.2", {"reasoning_effort": "minimal"}, "reasoning_effort", "not minimal"),
        ("gpt-5.2", {"reasoning_effort": "high", "temperature": 0.2}, "temperature", "only with reasoning effort none"),
        ("gpt-4.1-mini", {"reasoning_effort": "low"}, "reasoning_effort", "not a reasoning model"),
        ("gpt-4o", {"max_output_tokens": 50_000}, "max_output_tokens", "at most 16384"),
    ],
)
def test_an_impossible_combination_is_refused_at_save(default_agent, model, fields, field, words):
    for name, value in {"model": model, **fields}.items():
        setattr(default_agent, name, value)
    with pytest.raises(InvalidInput) as refused:
        agent_save(agent=default_agent, make_default=True)
    assert words in refused.value.fields[field]
    assert Agent.objects.get(pk=default_agent.pk).model != model


def test_the_admin_form_shows_why(admin_client, default_agent):
    url = f"/admin/conversations/agent/{default_agent.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(model="gpt-5-mini", temperature="0.7", reasoning_effort="", tools=default_agent.tools,
                model_capabilities="{}")
    assert "What the model accepts" in page.content.decode()
    answer = admin_client.post(url, data)
    assert answer.status_code == 200  # the form again, with the error
    assert "gpt-5-mini does not accept a temperature" in answer.content.decode()
    assert Agent.objects.get(pk=default_agent.pk).model != "gpt-5-mini"


def test_the_environment_can_teach_the_table_a_new_model(settings, default_agent):
    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM,
        "MODEL_CAPABILITIES": '{"acme-reasoner": {"reasoning": true, "efforts": ["low", "high"]}}',
    }
    row = capabilities.capabilities_for("acme-reasoner-2")
    assert row.reasoning and row.efforts == ("low", "high") and row.sampling == ()
    default_agent.model, default_agent.reasoning_effort = "acme-reasoner-2", "medium"
    with pytest.raises(InvalidInput):
        agent_save(agent=default_agent, make_default=True)


def test_unknown_models_get_the_documented_safe_default():
    row = capabilities.capabilities_for("somebody-elses-model")
    assert row is capabilities.UNKNOWN
    assert row.accepts_sampling("temperature", "") and not row.accepts_sampling("temperature", "low")
    assert row.is_reasoning("low") and not row.is_reasoning("")


def _plan_for(agent: Any, model: str) -> TurnPlan:
    caps = capabilities.capabilities_for(model)
    context = SimpleNamespace(customer_kind="visitor", customer_id="v-1")
    return TurnPlan(
        turn=SimpleNamespace(id="t-1"), agent=agent, conversation_id="c-1", model=model, budget=1000,
        selection=None, tool_names=[], tool_definitions=[], tool_context=context, max_tool_rounds=1,
        capabilities=caps,
    )


@pytest.mark.parametrize("prefix", sorted(capabilities.BUILTIN))
def test_every_family_builds_a_request_the_spec_and_the_table_accept(prefix):
    row = capabilities.capabilities_for(prefix)
    for effort in ("", *row.efforts):
        for temperature in (None, 0.5):
            agent = SimpleNamespace(
                pk=1, instructions="Be kind.", temperature=temperature, reasoning_effort=effort,
                max_output_tokens=1000, history_token_budget=8000, model_capabilities={},
            )
            body = _plan_for(agent, prefix).request([{"type": "message", "role": "user", "content": "hi"}])
            assert_valid_request(body)
            if capabilities.agent_problems(agent, prefix):
                continue  # refused at save; the builder still drops what the model refuses
            assert ("include" in body) is row.reasoning
            if row.reasoning and effort:
                assert body["reasoning"] == {"effort": effort}
            assert ("temperature" in body) is (temperature is not None)
            assert body["prompt_cache_key"] and len(body["safety_identifier"]) <= 64
            assert "v-1" not in body["safety_identifier"]
        for param in ("temperature", "top_p"):
            if row.reasoning and not row.sampling_efforts:
                assert param not in row.sampling


def test_plan_load_uses_the_table(conversation, agent):
    _set(agent, model="gpt-5.4")
    posted = ask(conversation, "hi")
    answered(posted)
    assert turn_plan_load(turn_id=posted.turn.pk).capabilities.phase
