"""The built-in offline model: a small rule-based support agent behind the Responses API.

With no provider key configured, the platform's SDK client is given an HTTP transport
that answers `POST /v1/responses` here instead of on the network. The request and the
streamed Server-Sent Events are the real wire format, parsed by the official SDK exactly
as a provider's would be. The model:
- calls `lookup_order` when it sees an order number (several numbers: parallel calls);
- calls `handoff_to_human` when the customer asks for a person;
- calls `search_knowledge_base` for questions when that tool is enabled, and answers
  from the passages it returns; otherwise answers from a small built-in FAQ;
- streams its text word by word, and says it is the offline demo model;
- asked as a model that uses `phase` (a replay naming gpt-5.4, say), marks its answer
  `final_answer` and says what it is about to do as `commentary` before tool calls,
  as those models do.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from conversations.agent import wire
from conversations.agent.capabilities import capabilities_for
from conversations.conf import platform_setting

INTRO = "(Offline demo model) "
FAQ: list[tuple[tuple[str, ...], str]] = [
    (("shipping", "ship", "delivery", "deliver", "arrive"),
     "Standard shipping takes 3-5 business days and is free on orders over $50. Express "
     "shipping takes 1-2 business days for $12."),
    (("return", "refund", "exchange", "send back"),
     "You can return any unused item within 30 days for a full refund. Start a return from "
     "your order page; refunds reach your card within 5 business days of us receiving it."),
    (("password", "login", "log in", "sign in", "account"),
     "To reset your password, use \"Forgot password\" on the sign-in page; the link in the "
     "email is valid for one hour."),
    (("hours", "open", "opening", "phone", "call"),
     "Our support team is available Monday to Friday, 9:00-18:00 CET. This chat is open "
     "around the clock."),
    (("payment", "pay", "card", "paypal", "invoice"),
     "We accept Visa, Mastercard, American Express and PayPal. Invoices are emailed when "
     "your order ships."),
    (("cancel",),
     "Orders can be cancelled until they ship. Give me the order number and email and I "
     "can check its status, or ask for a person to cancel it for you."),
]
HUMAN = re.compile(r"\b(human|person|agent|representative|somebody real|someone real|real person|talk to someone|operator)\b", re.I)
ORDER = re.compile(r"(?:order\s*(?:number|no\.?|#)?\s*#?|#)\s*(\d{3,10})\b|\b(\d{4,10})\b", re.I)
# An address, or the placeholder PII redaction sent instead (passed on as a real model would).
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|<EMAIL_[0-9]+>")
GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", re.I)


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


def _trailing_outputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    outputs = []
    for item in reversed(items):
        if item.get("type") == "function_call_output":
            outputs.append(item)
        elif item.get("type") in ("function_call", "reasoning"):
            continue
        else:
            break
    return list(reversed(outputs))


def _call_names(items: list[dict[str, Any]]) -> dict[str, str]:
    return {i["call_id"]: i.get("name", "") for i in items if i.get("type") == "function_call"}


def _describe_order(data: dict[str, Any]) -> str:
    text = f"Order {data['order_number']} is {data['status']}."
    if data.get("items"):
        names = ", ".join(str(i.get("name", i)) if isinstance(i, dict) else str(i) for i in data["items"])
        text += f" It contains: {names}."
    if data.get("carrier") and data.get("tracking_number"):
        text += f" It is travelling with {data['carrier']}, tracking number {data['tracking_number']}."
    if data.get("estimated_delivery"):
        text += f" Estimated delivery: {data['estimated_delivery']}."
    return text


def _answer_from_outputs(items: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> str:
    names = _call_names(items)
    parts = []
    for output in outputs:
        name = names.get(output["call_id"], "")
        raw = output.get("output", "")
        if isinstance(raw, list):
            raw = " ".join(p.get("text", "") for p in raw if isinstance(p, dict))
        if raw.startswith("Error:"):
            parts.append("I could not complete that step just now. " + raw.removeprefix("Error:").strip())
        elif name == "lookup_order":
            try:
                parts.append(_describe_order(json.loads(raw)))
            except (ValueError, KeyError, TypeError):
                parts.append("I could not find that order for you. Please check the order number "
                             "and the email address you used when ordering.")
        elif name == "handoff_to_human":
            parts.append("I have passed your conversation to our support team. A person will reply here.")
        elif name == "search_knowledge_base":
            parts.append(_answer_from_passages(raw))
        else:
            parts.append(raw[:500])
    return " ".join(parts)


def _answer_from_passages(raw: str) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return "I could not search our help articles just now."
    passages = data.get("results", data) if isinstance(data, dict) else data
    if not passages:
        return ("I could not find that in our help articles. I can connect you with a person "
                "if you like.")
    best = passages[0]
    title = best.get("title") or best.get("document_title") or "our help center"
    text = " ".join(str(best.get("text", "")).split())
    return f"From \"{title}\": {text[:600]}"


def _faq_answer(text: str) -> str | None:
    lowered = text.lower()
    best, best_hits = None, 0
    for words, answer in FAQ:
        hits = sum(1 for w in words if w in lowered)
        if hits > best_hits:
            best, best_hits = answer, hits
    return best


def decide(request: dict[str, Any]) -> tuple[str, Any]:
    """("calls", [(name, arguments)]) or ("text", str) for this request."""
    items = request.get("input") or []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    tools = {t.get("name") for t in request.get("tools") or []}
    outputs = _trailing_outputs(items)
    if outputs:
        return "text", _answer_from_outputs(items, outputs)
    text = _last_user_text(items)
    if HUMAN.search(text) and "handoff_to_human" in tools:
        return "calls", [("handoff_to_human", {"reason": "The customer asked to talk to a person."})]
    numbers = []
    for match in ORDER.finditer(text):
        number = match.group(1) or match.group(2)
        if number not in numbers:
            numbers.append(number)
    if numbers and "lookup_order" in tools:
        email = EMAIL.search(text)
        return "calls", [
            ("lookup_order", {"order_number": n, "email": email.group(0) if email else None})
            for n in numbers[:3]
        ]
    if GREETING.match(text) and len(text) < 40:
        return "text", (INTRO + "Hello! I'm the offline demo assistant. I can answer questions "
                        "about shipping, returns, payments and accounts, check an order (tell me "
                        "the order number and your email), or connect you with a person.")
    if "search_knowledge_base" in tools and text.strip():
        return "calls", [("search_knowledge_base", {"query": text[:300]})]
    answer = _faq_answer(text)
    if answer:
        return "text", INTRO + answer
    return "text", (INTRO + "I'm a simple offline assistant, so I may not understand everything. "
                    "I can help with shipping, returns, payments, accounts and order status "
                    "(give me the order number and email), or connect you with a person.")


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


async def _stream(request: dict[str, Any]) -> AsyncIterator[bytes]:
    writer = wire.EventWriter(request)
    for event in writer.created():
        yield wire.sse(event)
    kind, decision = decide(request)
    delay = platform_setting("OFFLINE_MODEL_WORD_DELAY")
    input_tokens = sum(len(json.dumps(i)) // 4 for i in request.get("input") or [])
    output_tokens = 0
    phased = capabilities_for(str(request.get("model", ""))).phase
    if kind == "calls":
        if phased:
            for event in writer.message(_words("Let me check that for you."), phase="commentary"):
                yield wire.sse(event)
        for name, arguments in decision:
            for event in writer.function_call(name, json.dumps(arguments)):
                yield wire.sse(event)
            output_tokens += 20
    else:
        words = _words(decision)
        output_tokens = len(words)
        for event in writer.message(words, phase="final_answer" if phased else None):
            yield wire.sse(event)
            if event["type"] == "response.output_text.delta" and delay:
                await asyncio.sleep(delay)
    yield wire.sse(writer.completed(wire.usage(input_tokens, output_tokens)))


class OfflineModelTransport(httpx2.AsyncBaseTransport):
    """Serves the offline model to the SDK's HTTP client without a socket."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith("/responses"):
            return httpx2.Response(404, json={"error": {"message": "Not found", "type": "invalid_request_error", "code": None, "param": None}})
        body = json.loads(await request.aread() or b"{}")
        if not body.get("stream"):
            return httpx2.Response(400, json={"error": {"message": "The offline model only streams.", "type": "invalid_request_error", "code": None, "param": "stream"}})
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_ByteStream(_stream(body))
        )


class _ByteStream(httpx2.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk
