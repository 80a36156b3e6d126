"""Checks written for aiohttp-prometheus-monitoring 0.1.5, run unchanged.

0.1.5 built every check with the entry's ``params`` plus ``collector``, a
``prometheus_client.Gauge`` named and described as the entry, and its checks passed it on to
``BaseMetric.__init__(collector)``. A check of that form is recognised by its constructor
and gets such a gauge again; only it is not registered anywhere: ``/metrics`` shows what
``check()`` returns, as for every check, and a value the check sets on the gauge is not shown.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

from prometheus_client import Gauge

from ._deprecation import OLD, stacklevel_outside
from .metrics.base import BaseMetric

__all__ = ["COLLECTOR", "legacy_keywords", "takes_collector"]

#: the keyword 0.1.5 added to every check's params
COLLECTOR = "collector"


def takes_collector(cls: type) -> bool:
    """Whether ``cls`` is a check of 0.1.5's form, to be built with ``collector=``.

    That is a ``BaseMetric`` subclass with an ``__init__`` of its own that either names
    ``collector`` (``def __init__(self, collector, **params)``) or takes ``*args`` and
    ``**kwargs`` to pass it on, as 0.1.5's own checks did. A subclass that keeps
    ``BaseMetric.__init__`` does not: ``collector`` is only its optional first argument.
    """
    if not issubclass(cls, BaseMetric) or cls.__init__ is BaseMetric.__init__:
        return False
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a signature that cannot be read: not recognisably 0.1.5's
        return False
    named = parameters.get(COLLECTOR)
    if named is not None:
        return named.kind in (named.POSITIONAL_OR_KEYWORD, named.KEYWORD_ONLY)
    kinds = {parameter.kind for parameter in parameters.values()}
    return {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD} <= kinds


def legacy_keywords(
    cls: type, entry: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The keywords 0.1.5 added to ``params`` for a check of its form (``{}`` for others).

    ``collector`` is an unregistered ``Gauge`` with the entry's ``name`` and ``description``,
    or None when they are not valid (the entry is refused for that anyway). A check given a
    ``collector`` in its ``params`` keeps it. Emits a ``DeprecationWarning`` naming today's
    form.
    """
    if COLLECTOR in params or not takes_collector(cls):
        return {}
    warnings.warn(
        f"{cls.__module__}.{cls.__qualname__}: a check built with `collector` is the form of "
        f"{OLD}; it gets a prometheus_client Gauge that /metrics does not show (it shows what "
        "check() returns). Use `def __init__(self, **params)` (or its params by name) without "
        "`collector`, calling `super().__init__(**params)`",
        DeprecationWarning,
        stacklevel=stacklevel_outside(),  # the line that set the monitoring up
    )
    name, description = entry.get("name"), entry.get("description")
    try:
        collector: Gauge | None = Gauge(name, description, registry=None)  # type: ignore[arg-type]
    except Exception:  # an invalid name or description: reported by the entry's own checks
        collector = None
    return {COLLECTOR: collector}
