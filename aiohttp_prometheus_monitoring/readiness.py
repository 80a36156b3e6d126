"""The readiness route: the checks' last results as ``application/health+json``.

The body follows the spirit of the IETF draft "Health Check Response Format for HTTP APIs":
an overall ``status`` (``pass`` or ``fail``) and, under ``checks``, one entry per check.
The answer comes from the last results; a request never runs a check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from .registry import is_ready
from .scheduler import CheckState

__all__ = ["readiness_body", "ready_handler"]

CONTENT_TYPE = "application/health+json"
NOT_RUN = "no result yet: the check has not finished its first run"


def _timestamp(unix: float | None) -> str | None:
    if unix is None:
        return None
    return (
        datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def check_report(state: CheckState) -> dict[str, Any]:
    """One check's entry in the readiness body."""
    report: dict[str, Any] = {
        "componentType": state.kind,
        "status": "pass" if state.up else "fail",
        "critical": state.critical,
        "observedValue": round(state.duration, 6) if state.up is not None else None,
        "observedUnit": "s",
        "time": _timestamp(state.last_run),
        "lastSuccess": _timestamp(state.last_success),
    }
    if not state.up:
        report["output"] = state.reason if state.up is False else NOT_RUN
    return report


def readiness_body(states: Sequence[CheckState]) -> dict[str, Any]:
    """The whole readiness body: overall status and each check's report."""
    return {
        "status": "pass" if is_ready(states) else "fail",
        "checks": {state.name: [check_report(state)] for state in states},
    }


def ready_handler(states: Sequence[CheckState]) -> Handler:
    """A handler answering 200 while every critical check is up, 503 otherwise."""
    states = tuple(states)

    async def ready(request: web.Request) -> web.Response:
        body = readiness_body(states)
        return web.Response(
            status=200 if body["status"] == "pass" else 503,
            text=json.dumps(body, indent=2),
            content_type=CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    return ready
