"""Compatibility with the 2018 releases: their samples and example programs, run unchanged.

The samples run as scripts under this venv's Python with this tree on ``PYTHONPATH``; with
``BOOSTER_SAMPLES_PYTHON=/path/to/python`` they run under that interpreter instead, with what
is installed there (a fresh venv holding the built wheel), this tree left off the path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
#: the interpreter that runs the 2018 samples
SAMPLES_PYTHON = os.environ.get("BOOSTER_SAMPLES_PYTHON", sys.executable)


def samples_env(**more: str) -> dict[str, str]:
    """The environment of a sample: this tree's packages first, unless another interpreter
    runs the samples with its own installed copy (a ``PYTHONPATH`` given in ``more`` is kept
    either way)."""
    env = {**os.environ, **more}
    if sys.executable == SAMPLES_PYTHON:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), more.get("PYTHONPATH"))))
    elif "PYTHONPATH" not in more:
        env.pop("PYTHONPATH", None)
    return env
