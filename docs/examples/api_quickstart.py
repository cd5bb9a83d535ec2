"""REST API quickstart: create a conversation, stream an answer, retry a turn.

Needs only `httpx`. Start the platform, create an API key, then run the example:

    export PORT=8000    # any free port: `make run` serves it, the example calls it
    make run &
    export SUPPORT_API_KEY=$(.venv/bin/python manage.py api_key_create --client demo --name quickstart --quiet)
    .venv/bin/python docs/examples/api_quickstart.py

Works with no model provider configured: the built-in offline model answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

# Where `make run` serves: its PORT (default 8000), unless SUPPORT_API_URL says otherwise.
BASE_URL = os.environ.get("SUPPORT_API_URL") or f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
API_KEY = os.environ["SUPPORT_API_KEY"]


def stream(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """POST with `Accept: text/event-stream` and yield the events of the turn it starts.

    The stream carries every event of the conversation (like the websocket); the
    X-Turn-Id header names the turn this request started, so we keep its events only.
    The server closes the stream after that turn's last event.
    """
    headers = {"Accept": "text/event-stream"}
    with client.stream("POST", path, json=body, headers=headers) as response:
        response.raise_for_status()
        turn_id = response.headers["X-Turn-Id"]
        data: list[str] = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                event = json.loads("\n".join(data))
                data = []
                if event.get("turn") in (turn_id, None):
                    yield event


def show(events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Print the answer as it streams; return the turn's last event."""
    last: dict[str, Any] = {}
    for event in events:
        kind = event["type"]
        if kind == "turn.started":
            print(f"  ({event['model_label']})")
        elif kind == "tool.started":
            print(f"  [{event['activity']}]")
        elif kind == "text.delta":
            print(event["delta"], end="", flush=True)
        elif kind in ("turn.completed", "turn.failed", "turn.cancelled", "stream.timeout"):
            last = event
    print()
    return last


def answer(client: httpx.Client, turn_path: str, last: dict[str, Any]) -> dict[str, Any]:
    """Retry a turn that failed (provider outage, timeout...) or was cancelled, and stream
    the new attempt. Every attempt stays in the turn audit."""
    while last.get("type") in ("turn.failed", "turn.cancelled"):
        print(f"  turn {last['type'].split('.')[1]}: {last.get('error') or 'no answer'}; retrying")
        last = show(stream(client, f"{turn_path}/retry"))
        turn_path = turn_path.rsplit("/", 1)[0] + f"/{last['turn']}"
    return last


def main() -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=BASE_URL, headers=headers, timeout=60) as client:
        # 1. Start a conversation for one of your customers.
        conversation = client.post(
            "/api/v1/conversations",
            json={"customer_id": "crm-1001", "customer_email": "ada@example.com", "metadata": {"plan": "pro"}},
        ).json()
        conversation_path = f"/api/v1/conversations/{conversation['id']}"
        print("conversation", conversation["id"])

        # 2. Ask a question and stream the answer. client_id makes the post idempotent:
        #    sending it again (after a network error, say) returns the same message and turn.
        question = {"text": "Where is order 1001? My email is ada@example.com", "client_id": "q-1"}
        print("you> " + question["text"])
        last = show(stream(client, f"{conversation_path}/messages", question))
        print("->", last["type"])

        # 3. Retry. A failed or cancelled turn can be retried. The offline model never
        #    fails, so we cancel a turn while it waits behind an earlier answer (turns of
        #    one conversation run one at a time, in order), then retry it.
        client.post(f"{conversation_path}/messages", json={"text": "What is your return policy?"})
        waiting = client.post(f"{conversation_path}/messages", json={"text": "And how long is shipping?"}).json()
        turn_path = f"{conversation_path}/turns/{waiting['turn']['id']}"
        cancelled = client.post(f"{turn_path}/cancel").json()
        print(f"you> {waiting['message']['text']}  (turn {cancelled['status']})")
        last = answer(client, turn_path, {"type": f"turn.{cancelled['status']}", "turn": cancelled["id"]})
        print("->", last["type"])

        # 4. Everything is stored: list the transcript after the last seq you saw (0: all).
        transcript = client.get(f"{conversation_path}/messages", params={"after": 0}).json()["results"]
        for message in transcript:
            if message["kind"] in ("user", "assistant"):
                print(f"#{message['seq']} {message['kind']}: {message['text'][:70]}")
        attempts = client.get(f"{conversation_path}/turns").json()["results"]
        print("turns:", ", ".join(f"{t['status']} (attempt {t['attempt']})" for t in attempts))


if __name__ == "__main__":
    main()
