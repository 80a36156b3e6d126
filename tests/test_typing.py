"""Typing as users meet it: a user's program, checked by ``mypy --strict`` against our
packages the way an installed copy is seen (py.typed; errors inside the libraries silent, as
for anything in site-packages), on each Python version we support."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is in the lint extra (scripts/test installs it)")

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "typing" / "user_program.py"


def strict_mypy(source: Path, python_version: str, cache: Path) -> tuple[str, int]:
    """mypy --strict on ``source`` alone, with none of this project's mypy settings."""
    stdout, stderr, status = api.run([
        "--strict", "--config-file", "", "--follow-imports", "silent",
        "--python-version", python_version, "--cache-dir", str(cache),
        "--no-error-summary", "--hide-error-context", str(source),
    ])  # fmt: skip
    return stdout + stderr, status


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A directory outside the project holding the user's files; the packages are found
    through MYPYPATH (an editable install's import hook is invisible to mypy)."""
    monkeypatch.setenv("MYPYPATH", str(ROOT))
    work = tmp_path / "user"
    work.mkdir()
    return work


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_a_typed_user_program_passes_mypy_strict(on_path: Path, python_version: str) -> None:
    """Both handler forms, a producer, a custom check, setup_monitoring and the testing kits:
    no error and no ignore needed, and every assert_type on a return value holds."""
    program = on_path / "user_program.py"
    shutil.copy(PROGRAM, program)
    output, status = strict_mypy(program, python_version, on_path / ".mypy_cache")
    assert (output.strip(), status) == ("", 0)


def test_mypy_here_does_catch_a_user_mistake(on_path: Path) -> None:
    """The check above is not vacuous: a wrong return type, an awaited publish read as a
    value and a misspelled method are each reported."""
    program = on_path / "mistakes.py"
    program.write_text(
        "from typing import assert_type\n"
        "from aioamqp_ext import BaseProducer\n"
        "from aiohttp_prometheus_monitoring.metrics.base import BaseMetric\n\n\n"
        "async def publish(producer: BaseProducer) -> None:\n"
        "    assert_type(await producer.publish_message(1, routing_key='k'), int)\n"
        "    await producer.publish_mesage(1)\n\n\n"
        "class Check(BaseMetric):\n"
        "    async def check(self) -> str:\n"
        "        return 'up'\n"
    )
    output, status = strict_mypy(program, "3.11", on_path / ".mypy_cache")
    assert status == 1
    assert 'Expression is of type "None", not "int"' in output
    assert '"BaseProducer" has no attribute "publish_mesage"' in output
    assert 'Return type "Coroutine[Any, Any, str]" of "check" incompatible' in output
