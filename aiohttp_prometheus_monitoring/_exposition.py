"""The /metrics handler: our check families written as text directly, the rest of the registry
by prometheus_client, in the format the scraper's Accept header asks for (text or OpenMetrics).

prometheus_client formats every sample anew on each scrape (label dicts sorted and escaped,
each value through a generic formatter): with hundreds of checks that took tens of
milliseconds. Here each check's lines are built once, at set-up, and a scrape only formats
the values. The output is byte for byte what prometheus_client writes for the same state. The
names of prometheus_client this needs are read in ``_aiohttp_booster.prometheus``; with a
prometheus_client outside the range they are tested with, prometheus_client writes it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from _aiohttp_booster.prometheus import (
    ALLOWUTF8,
    FORMAT_TESTED,
    UNDERSCORES,
    VALUES,
    choose_encoder,
    go_float,
)

from .registry import (
    DURATION,
    DURATION_HELP,
    LAST_SUCCESS,
    LAST_SUCCESS_HELP,
    READY,
    READY_HELP,
    RESULTS,
    RUNS,
    RUNS_HELP,
    TIMEOUT,
    TIMEOUT_HELP,
    UP,
    UP_HELP,
    checks_left_out,
    is_ready,
)

if TYPE_CHECKING:
    from .scheduler import CheckState

__all__ = ["ChecksText", "metrics_handler"]

OPENMETRICS = "application/openmetrics-text"
_BIT = ("0.0\n", "1.0\n")


def _help(documentation: str, openmetrics: bool) -> str:
    escaped = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return escaped.replace('"', r"\"") if openmetrics else escaped


def _label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _header(name: str, documentation: str, kind: str, openmetrics: bool) -> str:
    return f"# HELP {name} {_help(documentation, openmetrics)}\n# TYPE {name} {kind}\n"


def _count(value: int) -> str:
    # what floatToGoString writes for a count, without its float round trip when it is small
    return f"{value}.0\n" if 0 <= value < 1_000_000 else f"{go_float(value)}\n"


class _Check:
    """The fixed parts of one check's lines: everything but the values."""

    __slots__ = ("duration", "gauge", "last_success", "runs", "state", "timeout", "up")

    def __init__(self, state: CheckState) -> None:
        name, check = state.name, f'check="{_label(state.name)}"'
        self.state = state
        # the talk's gauge, a family of its own: its header differs between the two formats
        self.gauge = tuple(
            _header(name, state.description, "gauge", om) + f"{name} " for om in (False, True)
        )
        self.up = f'{UP}{{{check},kind="{_label(state.kind)}"}} '
        self.duration = f"{DURATION}{{{check}}} "
        self.last_success = f"{LAST_SUCCESS}{{{check}}} "
        self.timeout = f"{TIMEOUT}{{{check}}} {go_float(state.timeout)}\n"
        self.runs = tuple(
            (f'{RUNS}_total{{{check},result="{result}"}} ', result) for result in RESULTS
        )


class ChecksText:
    """The families of ``ChecksCollector`` as exposition text, as prometheus_client writes them.

    Args:
        states: the checks' states, in the order the collector has them.
    """

    def __init__(self, states: Sequence[CheckState]) -> None:
        self._states = tuple(states)
        self._checks = tuple(_Check(state) for state in states)
        self._headers = tuple(
            (
                _header(READY, READY_HELP, "gauge", om) + f"{READY} ",
                _header(UP, UP_HELP, "gauge", om),
                _header(DURATION, DURATION_HELP, "gauge", om),
                _header(LAST_SUCCESS, LAST_SUCCESS_HELP, "gauge", om),
                _header(TIMEOUT, TIMEOUT_HELP, "gauge", om),
                _header(RUNS if om else f"{RUNS}_total", RUNS_HELP, "counter", om),
            )
            for om in (False, True)
        )

    def render(self, openmetrics: bool) -> str:
        """The text of our families; a check that never finished a run is left out."""
        done = [check for check in self._checks if check.state.up is not None]
        ready, up, duration, last_success, timeout, runs = self._headers[openmetrics]
        out = [check.gauge[openmetrics] + _BIT[check.state.up is True] for check in done]
        out.append(ready + _BIT[is_ready(self._states)])
        out.append(up)
        out += [check.up + _BIT[check.state.up is True] for check in done]
        out.append(duration)
        out += [f"{check.duration}{go_float(check.state.duration)}\n" for check in done]
        out.append(last_success)
        out += [
            f"{check.last_success}{go_float(check.state.last_success)}\n"
            for check in done
            if check.state.last_success is not None
        ]
        out.append(timeout)
        out += [check.timeout for check in done]
        out.append(runs)
        for check in done:
            counts = check.state.runs
            out += [prefix + _count(counts[result]) for prefix, result in check.runs]
        return "".join(out)


def metrics_handler(registry: CollectorRegistry, states: Sequence[CheckState]) -> Handler:
    """A handler serving ``registry`` as text or OpenMetrics, as the scraper's Accept asks,
    gzipped when the scraper accepts it.

    Args:
        registry: the app's registry, whose first collector is the ``ChecksCollector`` of
            ``states``.
        states: the checks' states.
    """
    whole = make_aiohttp_handler(registry)
    if not FORMAT_TESTED or choose_encoder is None:  # a prometheus-client we have not tested
        return whole
    encode = choose_encoder
    text = ChecksText(states)
    # (openmetrics, escaping) pairs under which prometheus_client writes our names unchanged.
    # Under the others (`dots`, and OpenMetrics' `values` and, for a name with a colon,
    # `underscores`, which rewrite sample names), and for a name[] filter or a target_info
    # metric (written before ours), prometheus_client writes the whole exposition.
    ours = {(False, UNDERSCORES), (False, ALLOWUTF8), (False, VALUES), (True, ALLOWUTF8)}
    if not any(":" in state.name for state in states):
        ours.add((True, UNDERSCORES))

    async def metrics(request: web.Request) -> web.StreamResponse:
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        encoder, content_type = encode(accept)
        openmetrics = content_type.startswith(OPENMETRICS)
        escaping = content_type.partition("escaping=")[2] or UNDERSCORES
        if (
            (openmetrics, escaping) not in ours
            or "name[]" in request.query
            or registry.get_target_info() is not None
        ):
            return await whole(request)
        with checks_left_out():
            rest = encoder(registry)
        body = text.render(openmetrics).encode() + rest
        response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})
        response.enable_compression()
        return response

    return metrics
