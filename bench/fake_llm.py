"""A fast fake Responses API for load tests, on asyncio (thousands of concurrent streams).

Every request is answered with one streamed message that takes `--latency` seconds in
all: the first token after `latency - deltas * gap`, then `--deltas` text deltas `gap`
apart. Each delta carries the time it was sent (`w3@1712345678.123456 `) and the first
one also the time the request arrived (`r@...`), so the load generator can tell
provider time from platform time, and measure how long each delta took to reach a
subscriber, with the same clock. Run as `python -m bench.fake_llm`; prints `PORT n`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from conversations.agent import wire


def _stream(body: dict[str, Any], received: float, latency: float, deltas: int) -> Any:
    """Yields events to send, or a float: seconds to wait first. An event is built
    after the wait before it, so its stamp is its send time."""
    writer = wire.EventWriter(body)
    yield from writer.created()
    item_id = wire.new_id("msg")
    yield writer.event("response.output_item.added", output_index=0, item={
        "id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []})
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    yield writer.event("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part)
    gap = latency / (deltas + 1)
    words: list[str] = []
    for index in range(deltas):
        yield gap * (2 if index == 0 else 1)
        words.append((f"r@{received:.6f} " if index == 0 else "") + f"w{index}@{time.time():.6f} ")
        yield writer.event("response.output_text.delta", item_id=item_id, output_index=0, content_index=0,
                           delta=words[-1], logprobs=[])
    text = "".join(words)
    yield writer.event("response.output_text.done", item_id=item_id, output_index=0, content_index=0,
                       text=text, logprobs=[])
    done_part = {**part, "text": text}
    yield writer.event("response.content_part.done", item_id=item_id, output_index=0, content_index=0,
                       part=done_part)
    item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [done_part]}
    writer.output.append(item)
    yield writer.event("response.output_item.done", output_index=0, item=item)
    yield writer.completed(wire.usage(200, 40))


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float, deltas: int) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        received = time.time()
        headers = dict(
            line.split(":", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ":" in line
        )
        length = int({k.strip().lower(): v.strip() for k, v in headers.items()}.get("content-length", 0))
        body = json.loads(await reader.readexactly(length) or b"{}")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        for step in _stream(body, received, latency, deltas):
            if isinstance(step, float):
                await writer.drain()
                await asyncio.sleep(step)
            else:
                writer.write(wire.sse(step))
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(latency: float, deltas: int, port: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, latency, deltas), "127.0.0.1", port, backlog=4096
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--deltas", type=int, default=10)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency, args.deltas, args.port))


if __name__ == "__main__":
    main()
