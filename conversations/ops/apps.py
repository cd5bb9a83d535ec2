"""App config for the operations package (label `ops`)."""

from __future__ import annotations

import atexit
import os

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "conversations.ops"
    label = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Ops observes the core and the agent through their hooks; neither imports ops.
        from conversations import observers
        from conversations.ops.logcontext import bind_log_context
        from conversations.ops.metrics import record_budget_stop, record_tool_call
        from conversations.ops.recording import on_turn_finished

        observers.turn_finished.connect(on_turn_finished)
        observers.turn_started.connect(bind_log_context)
        observers.tool_called.connect(record_tool_call)
        observers.budget_stopped.connect(record_budget_stop)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Live gauges (open websockets) of a process that exits must stop counting.
            from prometheus_client import multiprocess

            atexit.register(multiprocess.mark_process_dead, os.getpid())
