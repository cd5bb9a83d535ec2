"""Writing secrets to disk readable by their owner only (0600), whatever the umask.

Used by the settings (the development secret key under var/) and `setup_demo` (the
demo admin password). Free of Django imports, so the settings module can use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
