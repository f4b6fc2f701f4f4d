"""``skip_exit_collection``: the heap is frozen at exit, after the process's work and its other
atexit handlers, and the exit is otherwise the usual one (output flushed, exit status kept)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import atexit, gc, sys
atexit.register(lambda: print("at exit, frozen:", gc.get_freeze_count() > 0))   # runs last
from pipeline.core.procexit import skip_exit_collection
skip_exit_collection()
skip_exit_collection()
atexit.register(lambda: print("handler registered later still runs"))
print("while working, frozen:", gc.get_freeze_count() > 0)
sys.stdout.write("buffered, unflushed")
sys.exit(3)
"""


def test_heap_frozen_only_at_exit_and_exit_unchanged() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 3
    lines = done.stdout.splitlines()
    assert lines[0] == "while working, frozen: False"
    assert lines[1] == "buffered, unflushedhandler registered later still runs"
    assert lines[2] == "at exit, frozen: True"
    assert len(lines) == 3
