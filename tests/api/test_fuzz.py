"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis).

For every operation, Hypothesis generates valid requests (positive mode) and requests
that violate the schema (negative mode) and sends them over HTTP to a real daphne
process. Path ids are drawn from real conversations and turns most of the time, so
the requests reach the code behind the 404. Every response must be documented and
match its schema; no request may cause a 5xx; invalid requests must be rejected.
`API_FUZZ_EXAMPLES` sets the examples per operation and mode (default 15: about 360
cases in all). Runs are derandomized, so a failure reproduces.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from conversations.models import Conversation, Turn
from conversations.models.turn import TurnStatus
from conversations.services.conversations import conversation_set_status
from tests.api.schema_check import loaded_schema, openapi_document
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


C = "/api/v1/conversations/{conversation_id}"
T = C + "/turns/{turn_id}"
OPERATIONS = [
    ("GET", "/api/v1/conversations"), ("POST", "/api/v1/conversations"),
    ("GET", C), ("PATCH", C), ("POST", f"{C}/handoff"), ("POST", f"{C}/handback"),
    ("GET", f"{C}/messages"), ("POST", f"{C}/messages"), ("GET", f"{C}/turns"),
    ("GET", T), ("POST", f"{T}/retry"), ("POST", f"{T}/cancel"), ("POST", f"{C}/rating"),
]


def test_every_operation_in_the_schema_is_fuzzed():
    document = openapi_document()
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert documented == set(OPERATIONS)


@pytest.fixture(scope="module")
def fuzz_server(django_db_setup: Any) -> Any:
    from tests.api.live_server import DaphneServer

    server = DaphneServer()
    yield server
    server.close()


@pytest.fixture
def seeded(default_agent: Any, live_key: str, fuzz_server: Any) -> dict[str, Any]:
    """A few conversations owned by the key, each with an answered message whose turn
    is then marked failed (so retry has something to retry); the first is resolved (so
    a rating can be stored)."""
    ids: list[str] = []
    turns: dict[str, list[str]] = {}
    with fuzz_server.client(headers={"Authorization": f"Bearer {live_key}"}) as client:
        for n in range(3):
            conversation = client.post("/api/v1/conversations", json={"customer_id": f"fuzz-{n}"}).json()
            posted = client.post(
                f"/api/v1/conversations/{conversation['id']}/messages?wait=20", json={"text": "Hello there"}
            ).json()
            assert posted["turn"]["status"] == "completed", posted
            ids.append(conversation["id"])
            turns[conversation["id"]] = [posted["turn"]["id"]]
    Turn.objects.filter(pk__in=[t for ts in turns.values() for t in ts]).update(
        status=TurnStatus.FAILED, error_code="timeout"
    )
    conversation_set_status(conversation=Conversation.objects.get(pk=ids[0]), status="resolved")
    return {"ids": ids, "turns": turns, "key": live_key}


def _path_parameters(seeded: dict[str, Any], path: str) -> st.SearchStrategy[dict[str, Any]]:
    if "{conversation_id}" not in path:
        return st.just({})
    pairs = [(c, t) for c, turn_ids in seeded["turns"].items() for t in turn_ids]
    if "{turn_id}" in path:
        return st.sampled_from([{"conversation_id": c, "turn_id": t} for c, t in pairs])
    return st.sampled_from([{"conversation_id": c} for c in seeded["ids"]])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=lambda v: v)
def test_fuzzing_finds_no_server_errors_or_schema_violations(seeded, fuzz_server, method, path, mode):
    operation = loaded_schema().find_operation_by_label(f"{method} {path}")
    headers = {"Authorization": f"Bearer {seeded['key']}"}
    fixed = _path_parameters(seeded, path)
    generated = operation.as_strategy(generation_mode=mode)
    # Mostly real ids (reach the code behind the lookup), sometimes generated ones.
    with_real_ids = fixed.flatmap(lambda params: operation.as_strategy(generation_mode=mode, path_parameters=params))
    strategy = st.one_of(with_real_ids, with_real_ids, with_real_ids, generated) if "{" in path else generated
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])
    cases = []

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        cases.append(case)
        case.call_and_validate(base_url=fuzz_server.url, headers=headers, checks=checks, timeout=30)

    try:
        fuzz()
    except Exception:
        print(fuzz_server.log_tail())
        raise
    assert cases
    # Let the turns the fuzzer queued finish before the database is reset.
    wait_for(lambda: not Turn.objects.filter(status__in=[TurnStatus.QUEUED, TurnStatus.RUNNING]).exists(), timeout=60)
