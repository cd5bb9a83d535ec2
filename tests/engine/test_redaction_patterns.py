"""What the redactor finds and what it leaves alone (the precise patterns and their
checksums), how placeholders come back in text, tool arguments and split deltas, and
which configured patterns an agent may not have. The redactor is plain Python: these
tests call its public interface directly; the turn-level behaviour is in
`test_redaction.py`."""

from __future__ import annotations

import asyncio
import json

import pytest

from conversations.agent.redaction import (
    Redactor,
    custom_patterns,
    iban_valid,
    luhn_valid,
    patterns_problem,
)


def redacted(text: str, **kwargs) -> str:
    return Redactor(custom_patterns(kwargs.get("patterns"))).text(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("write to Ada.Lovelace@example.co.uk.", "write to <EMAIL_1>."),
    ("mailto:ada+orders@shop.example.com", "mailto:<EMAIL_1>"),
    ("call +44 20 7946 0958 today", "call <PHONE_1> today"),
    ("call +14155552671", "call <PHONE_1>"),
    ("call (415) 555-2671", "call <PHONE_1>"),
    ("call 555-123-4567 or 020 7946 0958", "call <PHONE_1> or <PHONE_2>"),
    ("card 4111 1111 1111 1111, exp 12/27", "card <CARD_1>, exp 12/27"),
    ("card 5500-0000-0000-0004", "card <CARD_1>"),
    ("card 4111111111111111", "card <CARD_1>"),
    ("amex 3782 822463 10005", "amex <CARD_1>"),
    ("IBAN DE89 3704 0044 0532 0130 00 THANKS", "IBAN <IBAN_1> THANKS"),
    ("iban gb82west12345698765432", "iban <IBAN_1>"),
    ("NL91ABNA0417164300 please", "<IBAN_1> please"),
])
def test_each_kind_is_found(text, expected):
    assert redacted(text) == expected


@pytest.mark.parametrize("text", [
    "order 1234567812345678 (16 digits, not Luhn-valid)",
    "order 1001, total 129.00 EUR, qty 3",
    "tracking 1Z999AA10123456784 with UPS",
    "placed 2026-12-07 10:30, due 07.12.2026",
    "amount 1,234,567.89 and 1 234 567",
    "server 192.168.100.200",
    "ISBN 978-3-16-148410-0",
    "account 123456789012 (digits alone are not a phone number)",
    "IBAN DE89 3704 0044 0532 0130 01 (checksum wrong)",
    "DE8937040044053201300 (a digit short for Germany)",
    "not an email: ada@localhost or @example.com",
])
def test_near_misses_are_left_alone(text):
    assert redacted(text) == text


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")  # Germany's IBANs are 22 long


def test_the_same_value_gets_the_same_placeholder_for_the_whole_turn():
    redactor = Redactor()
    first = redactor.text("ada@example.com and 4111 1111 1111 1111")
    second = redactor.text("ADA@example.com, bob@example.com, 4111-1111-1111-1111")
    assert first == "<EMAIL_1> and <CARD_1>"
    assert second == "<EMAIL_1>, <EMAIL_2>, <CARD_1>"
    assert redactor.summary() == {
        "EMAIL": {"values": 2, "replacements": 3}, "CARD": {"values": 1, "replacements": 2},
    }
    assert redactor.restore("<EMAIL_2> <CARD_1> <EMAIL_3>") == "bob@example.com 4111 1111 1111 1111 <EMAIL_3>"


def test_a_configured_pattern_gets_its_own_label():
    patterns = [{"label": "ORDER_REF", "pattern": r"ORD-[0-9]{6}"}, {"label": "VIP", "pattern": r"VIP-\w+"}]
    assert redacted("ORD-123456 for VIP-gold, not ORD-12", patterns=patterns) == \
        "<ORDER_REF_1> for <VIP_1>, not ORD-12"


def test_input_items_are_redacted_without_changing_the_originals():
    redactor = Redactor()
    items = [
        {"type": "message", "role": "user", "content": "ada@example.com"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ada@example.com"}]},
        {"type": "function_call", "call_id": "c1", "name": "t", "arguments": '{"e": "ada@example.com"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "ada@example.com"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
    ]
    original = json.dumps(items)
    sent = redactor.items(items)
    assert json.dumps(items) == original
    assert sent[0]["content"] == "<EMAIL_1>" and sent[1]["content"][0]["text"] == "<EMAIL_1>"
    assert sent[2]["arguments"] == '{"e": "<EMAIL_1>"}' and sent[3]["output"] == "<EMAIL_1>"
    assert sent[4] is items[4]


def test_tool_arguments_get_the_value_json_escaped():
    redactor = Redactor(custom_patterns([{"label": "NOTE", "pattern": r'say "[a-z]+"'}]))
    assert redactor.text('please say "hi"') == "please <NOTE_1>"
    call = {"type": "function_call", "arguments": '{"text": "<NOTE_1>", "other": "<NOTE_9>"}'}
    restored = redactor.restore_call(call)
    assert json.loads(restored["arguments"]) == {"text": 'say "hi"', "other": "<NOTE_9>"}
    assert call["arguments"] == '{"text": "<NOTE_1>", "other": "<NOTE_9>"}'


def test_redaction_off_passes_everything_through():
    redactor = Redactor.off()
    item = {"type": "message", "role": "user", "content": "ada@example.com"}
    assert redactor.item(item) is item and redactor.text("ada@example.com") == "ada@example.com"
    assert redactor.restore("<EMAIL_1>") == "<EMAIL_1>" and redactor.summary() == {}


def _streamed(redactor: Redactor, deltas: list[str]) -> list[str]:
    out: list[str] = []

    async def sink(text: str) -> None:
        out.append(text)

    async def run() -> None:
        restorer = redactor.stream(sink)
        for delta in deltas:
            await restorer.feed(delta)
        await restorer.close()

    asyncio.run(run())
    return out


def test_a_placeholder_split_anywhere_across_deltas_is_restored():
    redactor = Redactor()
    redactor.text("ada@example.com 4111 1111 1111 1111")
    answer = "Mail <EMAIL_1> about <CARD_1>, a < b, and <EMAIL_7> stays."
    expected = "Mail ada@example.com about 4111 1111 1111 1111, a < b, and <EMAIL_7> stays."
    for cut in range(1, len(answer)):
        for second_cut in (cut + 3, cut + 9):
            deltas = [answer[:cut], answer[cut:second_cut], answer[second_cut:]]
            out = _streamed(redactor, [d for d in deltas if d])
            assert "".join(out) == expected, (cut, second_cut, out)
            # no piece shows a known placeholder, whole or begun
            for piece in out:
                assert "<EMAIL_1" not in piece and "<CARD_1" not in piece, out
                assert not any(piece.endswith(known[:n]) for known in ("<EMAIL_1>", "<CARD_1>")
                               for n in range(2, 9)), out


def test_a_stream_holds_back_only_what_could_be_a_placeholder():
    redactor = Redactor()
    redactor.text("ada@example.com")
    assert _streamed(redactor, ["Hello ", "<EM", "AIL_1>", " done"]) == ["Hello ", "ada@example.com", " done"]
    assert _streamed(redactor, ["x < 3 ", "and <b>"]) == ["x < 3 ", "and <b>"]
    assert _streamed(redactor, ["ends with <EMA"]) == ["ends with ", "<EMA"]  # close sends the rest


@pytest.mark.parametrize(("value", "problem"), [
    ([{"label": "ORDER_REF", "pattern": "ORD-[0-9]{6}"}], None),
    ([], None),
    ({"label": "X"}, "list"),
    ([{"label": "order", "pattern": "x"}], "upper case"),
    ([{"label": "EMAIL", "pattern": "x"}], "built-in"),
    ([{"label": "REF", "pattern": "ORD-("}], "not a valid regular expression"),
    ([{"label": "REF", "pattern": "a*"}], "empty"),
    ([{"label": "REF"}], "exactly"),
    ([{"label": "REF", "pattern": "x"}] * 21, "At most"),
])
def test_configured_patterns_are_checked(value, problem):
    found = patterns_problem(value)
    assert (found is None) if problem is None else (problem in found)
