"""`manage.py setup_demo`: the default agent, demo orders and a staff login (idempotent)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from conversations.knowledge.demo import demo_articles_seed
from conversations.models import Agent
from conversations.permissions import support_groups_sync
from conversations.secretfiles import write_secret
from tools.models import DemoOrder

INSTRUCTIONS = """You are the customer support assistant of Northwind Goods, an online shop.
Be brief, warm and precise. Answer from facts you have: the conversation, tool results and
the help articles (search them with search_knowledge_base and name the article you used).
Never invent order details. To check an order, call lookup_order with the
order number and the email the customer gives. If the customer asks for a person, or you
cannot help, call handoff_to_human and tell them a person will reply here."""

ORDERS = [
    ("1001", "ada@example.com", "shipped", [{"name": "Espresso grinder", "qty": 1}], "129.00", "UPS", "1Z999AA10123456784", 2),
    ("1002", "grace@example.com", "processing", [{"name": "Pour-over kettle", "qty": 1}], "59.00", "", "", 5),
    ("1003", "ada@example.com", "delivered", [{"name": "Paper filters", "qty": 3}], "18.00", "DHL", "JD014600006281234567", -3),
    ("1004", "linus@example.com", "cancelled", [{"name": "Milk frother", "qty": 1}], "35.00", "", "", 0),
]


class Command(BaseCommand):
    help = "Create the default agent, demo orders and a staff login for trying the platform."

    def handle(self, *args, **options) -> None:
        agent, created = Agent.objects.get_or_create(
            name="Support assistant",
            defaults={
                "instructions": INSTRUCTIONS,
                "tools": ["lookup_order", "handoff_to_human", "search_knowledge_base"],
                "is_default": True,
            },
        )
        if not Agent.objects.filter(is_default=True).exists():
            agent.is_default = True
            agent.save(update_fields=["is_default"])
        now = timezone.now()
        for number, email, status, items, total, carrier, tracking, eta_days in ORDERS:
            DemoOrder.objects.update_or_create(
                number=number,
                defaults={
                    "customer_email": email,
                    "status": status,
                    "items": items,
                    "total": Decimal(total),
                    "carrier": carrier,
                    "tracking_number": tracking,
                    "placed_at": now - timedelta(days=4),
                    "estimated_delivery": (now + timedelta(days=eta_days)).date(),
                },
            )
        self.stdout.write(f"Agent: {agent.name} ({'created' if created else 'exists'})")
        self.stdout.write(f"Demo orders: {', '.join(o[0] for o in ORDERS)} (e.g. 1001 with ada@example.com)")
        self.stdout.write(f"Help articles: {', '.join(demo_articles_seed())}")
        support_groups_sync()
        self.stdout.write('Staff groups: "Support viewer" (read-only), "Support agent" (reply, retry, take over)')
        self._staff_login()

    def _staff_login(self) -> None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            path = settings.VAR_DIR / "admin-password.txt"
            hint = f" (password in {path.relative_to(settings.BASE_DIR)})" if path.exists() and path.is_relative_to(settings.BASE_DIR) else ""
            self.stdout.write(f"Staff login: admin{hint}")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@example.com", password)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        write_secret(settings.VAR_DIR / "admin-password.txt", password + "\n")
        self.stdout.write(self.style.SUCCESS(f"Staff login created: admin / {password} (also saved in var/admin-password.txt)"))
