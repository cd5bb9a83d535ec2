"""docs/architecture.md names only code that exists (`bin/check-doc-names`, run by lint)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "bin" / "check-doc-names"


def run_check(*docs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), *map(str, docs)], capture_output=True, text=True, cwd=ROOT)


def test_the_architecture_doc_names_only_code_that_exists() -> None:
    result = run_check()
    assert result.returncode == 0, result.stdout


def test_a_renamed_function_a_moved_module_and_a_deleted_helper_are_reported(tmp_path: Path) -> None:
    doc = tmp_path / "drifted.md"
    doc.write_text(
        "The claim is `services/turns.turn_claim` and `plan.turn_claim_and_plan` (real).\n"
        "It finishes in `_fail_locked`, lives in `conversations/agent/claims.py`,\n"
        "calls `services/turns.turn_grab` and emits `turn.vanished`.\n"
        "Prose in backticks is left alone: `open`, `make test`, `{\"status\": \"ready\"}`.\n"
    )
    result = run_check(doc)
    assert result.returncode == 1
    reported = [line.split("`")[1] for line in result.stdout.splitlines() if "names nothing" in line]
    assert reported == ["_fail_locked", "conversations/agent/claims.py", "services/turns.turn_grab", "turn.vanished"]
