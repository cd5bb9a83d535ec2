"""`manage.py chat`: talk to an agent from the terminal, through the same engine and
services as every other door, with streamed replies and tool activity shown."""

from __future__ import annotations

import asyncio
import logging
import sys

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from conversations.agent.engine import engine
from conversations.agent.events import group_name
from conversations.errors import PlatformError
from conversations.models.conversation import Channel, CustomerKind
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post


class Command(BaseCommand):
    help = "Chat with the default agent in the terminal (Ctrl-D to quit)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--customer", default="", help="External customer id (default: a visitor).")
        parser.add_argument("--email", default="", help="The customer's verified email.")

    def handle(self, *args, **options) -> None:
        if options["verbosity"] < 2:
            # Info lines (one per finished turn) would land in the middle of the chat.
            logging.getLogger("conversations").setLevel(logging.WARNING)
        asyncio.run(self._chat(options["customer"], options["email"]))

    async def _chat(self, customer: str, email: str) -> None:
        engine.bind()
        conversation = await sync_to_async(conversation_create)(
            customer_id=customer,
            customer_kind=CustomerKind.USER if customer else CustomerKind.VISITOR,
            customer_email=email,
            channel=Channel.API,
        )
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group_name(conversation.pk), channel)
        self.stdout.write(f"Conversation {conversation.pk}. Type a message; Ctrl-D quits.")
        loop = asyncio.get_running_loop()
        while True:
            try:
                text = await loop.run_in_executor(None, _prompt)
            except EOFError:
                self.stdout.write("")
                return
            if not text.strip():
                continue
            try:
                result = await sync_to_async(message_post)(conversation=conversation, text=text)
            except PlatformError as exc:
                self.stdout.write(self.style.ERROR(exc.message))
                continue
            if result.turn is None:
                self.stdout.write("(stored; the AI is paused, a person will answer)")
                continue
            await self._follow(layer, channel, str(result.turn.id))

    async def _follow(self, layer, channel: str, turn_id: str) -> None:
        while True:
            message = await layer.receive(channel)
            event = message["event"]
            if event.get("turn") not in (turn_id, None):
                continue
            kind = event["type"]
            if kind == "turn.started":
                sys.stdout.write(f"[{event['model_label']}]\nagent> ")
            elif kind == "text.delta":
                sys.stdout.write(event["delta"])
            elif kind == "tool.started":
                sys.stdout.write(f"\n  ... {event['activity']} ({event['name']})\n")
            elif kind == "tool.finished":
                sys.stdout.write(f"  ... {event['name']} {'done' if event['ok'] else 'failed'}\nagent> ")
            elif kind == "turn.completed":
                sys.stdout.write("\n")
                return
            elif kind == "turn.failed":
                sys.stdout.write(f"\n[turn failed: {event['error']}]\n")
                return
            elif kind == "conversation.updated" and event.get("status") == "waiting_on_staff":
                sys.stdout.write("\n  ... (handed off to a person)\n")
            sys.stdout.flush()


def _prompt() -> str:
    return input("you> ")
