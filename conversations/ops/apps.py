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
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Live gauges (open websockets) of a process that exits must stop counting.
            from prometheus_client import multiprocess

            atexit.register(multiprocess.mark_process_dead, os.getpid())
