"""Test an app's monitoring without its dependencies: force checks, run them, read samples.

An app set up with ``setup_monitoring`` runs under pytest-aiohttp's ``aiohttp_client`` (or
any server) as in production. :func:`force` makes a check up, down or hung without the
system it watches, :func:`run_checks` runs every check now and waits for the results, and
:func:`sample` reads a sample as ``/metrics`` shows it::

    async def test_not_ready_without_postgres(aiohttp_client):
        app = await create_app()
        force(app, "monitoring_postgres", "down")
        client = await aiohttp_client(app)
        await run_checks(app)
        assert (await client.get("/ready")).status == 503
        assert sample(app, "monitoring_postgres") == 0.0

Only the check's probe is replaced, the call that would talk to the dependency: the
schedule, the timeout, the results, the metrics, ``/metrics`` and ``/ready`` are the
production ones. This module needs neither pytest nor any extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from aiohttp import web

from _aiohttp_booster.redact import shown

from .web import get_monitoring

__all__ = ["ForcedDown", "State", "force", "release", "run_checks", "sample"]

#: what :func:`force` makes of a check
State = Literal["up", "down", "hung"]
MAX_MATCHES_SHOWN = 10  # label sets an ambiguous sample() lists


class ForcedDown(ConnectionError):
    """Raised by the probe of a check forced ``"down"``, as an unreachable dependency's is."""


async def _up() -> bool:
    return True


async def _down() -> bool:
    raise ForcedDown("forced down by aiohttp_prometheus_monitoring.testing")


async def _hung() -> bool:
    never: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    return await never  # until the check's timeout cancels the run


_PROBES: dict[str, Callable[[], Awaitable[bool]]] = {"up": _up, "down": _down, "hung": _hung}


def force(app: web.Application, check: str, state: State) -> None:
    """Make a check of ``app`` up, down or hung from its next run on, until :func:`release`.

    The check's own ``check()`` is no longer called; in its place the run returns True
    (``"up"``), raises :class:`ForcedDown` (``"down"``: the run counts as an ``error``, as a
    refused connection does), or never answers (``"hung"``: the check's timeout cancels the
    run, which counts as a ``timeout``, so give the check a short ``timeout`` in tests).
    Forcing before the app starts applies to the first run already.

    Args:
        app: an app set up with ``setup_monitoring``.
        check: the check's name, as in its ``metrics`` entry.
        state: ``"up"``, ``"down"`` or ``"hung"``.

    Raises:
        ValueError: ``state`` is not one of the three, or ``app`` has no check called
            ``check`` (the message lists those it has).
        MonitoringError: ``setup_monitoring`` was not called on ``app``.
    """
    probe = _PROBES.get(state) if isinstance(state, str) else None
    if probe is None:
        raise ValueError(
            f"force(): unknown state {shown(state)}; expected 'up', 'down' or 'hung' "
            "(release() gives a check its own probe back)"
        )
    get_monitoring(app).scheduler.substitute(check, probe)


def release(app: web.Application, check: str) -> None:
    """Undo :func:`force`: from its next run on, the check runs its own ``check()`` again.

    Args:
        app: an app set up with ``setup_monitoring``.
        check: the check's name; releasing a check that is not forced does nothing.

    Raises:
        ValueError: ``app`` has no check called ``check`` (the message lists those it has).
        MonitoringError: ``setup_monitoring`` was not called on ``app``.
    """
    get_monitoring(app).scheduler.substitute(check, None)


async def run_checks(app: web.Application) -> None:
    """Run every check of a started app once now and wait until the results are recorded.

    Each check runs in its own task, under its timeout, as scheduled runs do: one in the
    middle of a run finishes it first, and a hung one returns after its timeout. The run
    takes the place of the check's next scheduled one. Tests need no sleeps: once this
    returns, ``/metrics``, ``/ready`` and :func:`sample` show those runs.

    Args:
        app: an app set up with ``setup_monitoring`` and started (by ``aiohttp_client``).

    Raises:
        MonitoringError: ``setup_monitoring`` was not called on ``app``, or the app has not
            started (or has stopped).
    """
    await get_monitoring(app).scheduler.run_now()


def sample(
    app: web.Application, name: str, labels: Mapping[str, str] | None = None
) -> float | None:
    """The value of one sample of the app's registry, as ``/metrics`` shows it.

    Args:
        app: an app set up with ``setup_monitoring``.
        name: the sample's name as ``/metrics`` writes it: ``monitoring_check_up``, the
            check's own gauge (``monitoring_redis``), ``monitoring_check_runs_total``, ...
        labels: labels the sample has; others it has may be left out, as long as only one
            sample matches.

    Returns:
        The value, or None when no such sample is shown (a check whose first run has not
        finished is not shown at all).

    Raises:
        ValueError: more than one sample matches; the message lists their labels.
        TypeError: ``name`` is not a string, or ``labels`` not a dict of strings.
        MonitoringError: ``setup_monitoring`` was not called on ``app``.
    """
    if not isinstance(name, str):
        raise TypeError(f"sample(): name: expected a sample name (a str), got {shown(name)}")
    wanted = labels if labels is not None else {}
    if not isinstance(wanted, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in wanted.items()
    ):
        raise TypeError(
            f"sample(): labels: expected a dict of str to str or None, got {shown(labels)}"
        )
    registry = get_monitoring(app).registry
    found = [
        shown_sample
        for family in registry.collect()
        for shown_sample in family.samples
        if shown_sample.name == name and wanted.items() <= shown_sample.labels.items()
    ]
    if len(found) > 1:
        listed = [shown(match.labels) for match in found[:MAX_MATCHES_SHOWN]]
        raise ValueError(
            f"sample(): {len(found)} samples {name} have the labels {shown(dict(wanted))}; "
            f"give labels that pick one of: {', '.join(listed)}"
        )
    return float(found[0].value) if found else None
