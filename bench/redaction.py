"""PII redaction's CPU per turn at a 400-item history, and what two libraries would cost.

A turn redacts its selected history once (`Redactor.history`, a fresh vault per turn, as
`runner.run_rounds` does), then restores its answer and a tool call. The history is a
seeded support conversation of 400 input items: customer messages (some with an email,
a phone number, a card number, an IBAN, an order reference), answers, staff replies,
customer facts, and `lookup_order` calls with their JSON outputs. Figures are process
CPU (`time.process_time`), median and p90 over the turns.

    .venv/bin/python bench/redaction.py [--turns 50] [--items 400]

`--library presidio` / `--library scrubadub` time the same history through Presidio's
pattern recognizers (email, phone, credit card, IBAN; called directly, no spaCy model
or NLP engine) or scrubadub's email, phone and credit-card detectors instead; neither
is a dependency of the platform: run it with an interpreter that has them, e.g.
`PYTHONPATH=. /tmp/piivenv/bin/python bench/redaction.py --library presidio`. The
module under test is plain Python, so no Django is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conversations.agent.redaction import Redactor, custom_patterns

PATTERNS = [{"label": "ORDER_REF", "pattern": r"ORD-[0-9]{6}"}]
QUESTIONS = [
    "Hi, where is my order? It was supposed to arrive yesterday and I still have nothing.",
    "Can I change the delivery address for order 1001 to my office instead of my home?",
    "My email is {email}, please send the invoice there.",
    "You can call me on {phone} after five.",
    "I paid with {card} and was charged twice, can you refund one of them?",
    "Please refund to my account {iban} instead of the card.",
    "The reference on my letter is {ref}, does that help you find it?",
    "The grinder makes a loud noise when I switch it on. I already tried descaling it.",
    "Thanks, that worked. One more thing: do you ship to Norway?",
]
ANSWERS = [
    "I am sorry about the delay. Let me look the order up for you.",
    "Your order 1001 shipped with UPS on Monday; tracking number 1Z999AA10123456784.",
    "I have noted the new address. The carrier will deliver to it from tomorrow on.",
    "A refund of 129.00 EUR is on its way; it takes three to five working days.",
    "Yes, we ship to Norway. Delivery takes four to six working days and costs 9.90 EUR.",
]


def history(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    values = {
        "email": lambda: f"customer{rng.randint(1, 40)}@example.com",
        "phone": lambda: f"+44 20 7946 {rng.randint(1000, 9999)}",
        "card": lambda: "4111 1111 1111 1111",
        "iban": lambda: "DE89 3704 0044 0532 0130 00",
        "ref": lambda: f"ORD-{rng.randint(100000, 999999)}",
    }
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": "Customer fact: prefers email at customer7@example.com"},
    ]
    while len(items) < count:
        question = rng.choice(QUESTIONS)
        items.append({"type": "message", "role": "user", "content": question.format(**{k: v() for k, v in values.items()})})
        roll = rng.random()
        if roll < 0.25:
            call_id = f"call_{len(items)}"
            items.append({"type": "function_call", "call_id": call_id, "name": "lookup_order",
                          "arguments": json.dumps({"order_number": "1001", "email": values["email"]()})})
            items.append({"type": "function_call_output", "call_id": call_id, "output": json.dumps({
                "order_number": "1001", "status": "shipped", "items": [{"name": "Espresso grinder", "qty": 1}],
                "total": "129.00", "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
                "placed_at": "2026-11-30", "estimated_delivery": "2026-12-09",
            })})
        elif roll < 0.3:
            items.append({"type": "message", "role": "developer",
                          "content": "Sam (a human support agent) replied to the customer: I have called the carrier."})
        items.append({"type": "message", "role": "assistant", "content": rng.choice(ANSWERS)})
    return items[:count]


def precise_turn(items: list[dict[str, Any]]) -> Callable[[], Any]:
    custom = custom_patterns(PATTERNS)

    def turn() -> Any:
        redactor = Redactor(custom)
        sent = redactor.history(items)
        redactor.restore("Order 1001 for <EMAIL_1> has shipped; we will call <PHONE_1>.")
        redactor.restore_call({"type": "function_call", "arguments": '{"order_number": "1001", "email": "<EMAIL_1>"}'})
        return sent, redactor.summary()

    return turn


def _texts(items: list[dict[str, Any]]) -> list[str]:
    return [item.get("content") or item.get("output") or item.get("arguments") or "" for item in items]


def presidio_turn(items: list[dict[str, Any]]) -> Callable[[], Any]:
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
    )

    recognizers = [EmailRecognizer(), PhoneRecognizer(), CreditCardRecognizer(), IbanRecognizer()]
    texts = _texts(items)

    def turn() -> Any:
        found = 0
        for text in texts:
            for recognizer in recognizers:
                found += len(recognizer.analyze(text, recognizer.supported_entities, None))
        return found

    return turn


def scrubadub_turn(items: list[dict[str, Any]]) -> Callable[[], Any]:
    import scrubadub
    import scrubadub.detectors

    scrubber = scrubadub.Scrubber(detector_list=[
        scrubadub.detectors.EmailDetector, scrubadub.detectors.PhoneDetector, scrubadub.detectors.CreditCardDetector,
    ])
    texts = _texts(items)

    def turn() -> Any:
        return [scrubber.clean(text) for text in texts]

    return turn


def measure(turn: Callable[[], Any], turns: int) -> list[float]:
    turn()  # warm: compiled patterns, imports
    samples = []
    for _ in range(turns):
        started = time.process_time()
        turn()
        samples.append((time.process_time() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--library", choices=["precise", "presidio", "scrubadub"], default="precise")
    args = parser.parse_args()
    items = history(args.items)
    build = {"precise": precise_turn, "presidio": presidio_turn, "scrubadub": scrubadub_turn}[args.library]
    samples = sorted(measure(build(items), args.turns))
    characters = sum(len(text) for text in _texts(items))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.library}: {len(items)} items ({characters:,} characters), {args.turns} turns")
    print(f"  CPU per turn: median {statistics.median(samples):.2f} ms, "
          f"p90 {samples[int(len(samples) * 0.9) - 1]:.2f} ms, max {samples[-1]:.2f} ms")
    if args.library == "precise":
        redactor = Redactor(custom_patterns(PATTERNS))
        redactor.items(items)
        print(f"  redacted: {json.dumps(redactor.summary())}")


if __name__ == "__main__":
    main()
