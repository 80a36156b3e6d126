"""Validating configuration values: a check's ``params`` against the keywords its class
accepts, durations, secrets taken from the environment, and the did-you-mean of a typo."""

from __future__ import annotations

import difflib
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._redact import safe_repr

_SIMPLE = (str, int, float, bool, type(None))


__all__ = ["accepts", "did_you_mean", "from_env", "param_problems", "resolve_env", "seconds"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a mistyped ``word``, else ``''``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def seconds(key: str, value: Any) -> tuple[float | None, str | None]:
    """A duration in seconds: a finite number > 0, or None and the problem (naming ``key``)."""
    try:
        finite = _is_number(value) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        return None, f"{key}: expected a number of seconds, got {safe_repr(key, value)}"
    if value <= 0:
        return None, f"{key}: must be > 0, got {value!r}"
    return float(value), None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def from_env(key: str, variable: Any) -> tuple[str | None, str | None]:
    """The value of the environment variable a ``<key>_env`` setting names, or None and the
    problem (naming the key and the variable, never a value)."""
    if not isinstance(variable, str) or not variable:
        return None, f"{key}_env: expected the name of an environment variable, got {variable!r}"
    if variable not in os.environ:
        return None, f"{key}_env: environment variable {variable!r} is not set"
    return os.environ[variable], None


def _simple_types(annotation: Any) -> tuple[type, ...] | None:
    """The plain types an annotation allows, or None when it is not a simple one to check."""
    if annotation in _SIMPLE:
        return (annotation,)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        allowed: list[type] = []
        for arg in typing.get_args(annotation):
            simple = _simple_types(arg)
            if simple is None:
                return None
            allowed.extend(simple)
        return tuple(allowed)
    return None


def _type_name(kinds: tuple[type, ...]) -> str:
    return " | ".join("None" if kind is type(None) else kind.__name__ for kind in kinds)


def _matches(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int to Python, never to a config reader
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def param_problems(cls: type, params: Mapping[str, Any]) -> list[str]:
    """What is wrong with building ``cls(**params)``: unknown, missing or mistyped keywords."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a class whose signature cannot be read: trust it
        return []
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # unresolvable annotations only lose us the type checks
        hints = {}
    accepted = {
        name: param
        for name, param in signature.parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    problems: list[str] = []
    for key in params:
        if key not in accepted and not takes_any:
            hint = did_you_mean(key, accepted)
            problems.append(f"params: unexpected keyword {key!r}{hint}")
    for name, param in accepted.items():
        if param.default is param.empty and name not in params:
            problems.append(f"params: missing required keyword {name!r}")
    for key, value in params.items():
        kinds = _simple_types(hints.get(key)) if key in accepted else None
        if kinds is not None and not _matches(value, kinds):
            problems.append(
                f"params: {key!r} expects {_type_name(kinds)}, "
                f"got {type(value).__name__} {safe_repr(key, value)}"
            )
    return problems


ENV_SUFFIX = "_env"


def resolve_env(
    params: Mapping[str, Any], accepted: Callable[[str], bool]
) -> tuple[dict[str, Any], list[str]]:
    """``params`` with each ``<key>_env: VAR`` replaced by ``<key>: os.environ[VAR]``.

    A ``*_env`` key the check class takes itself is left alone. Problems name the key and
    the variable, never a value.
    """
    resolved: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in params.items():
        target = key.removesuffix(ENV_SUFFIX)
        if not key.endswith(ENV_SUFFIX) or not target or accepted(key):
            resolved[key] = value
            continue
        if target in params:
            problems.append(f"params: give either {target!r} or {key!r}, not both")
            continue
        resolved[target], problem = from_env(target, value)
        if problem is not None:
            problems.append(f"params: {problem}")
    return resolved, problems


def accepts(cls: type) -> Callable[[str], bool]:
    """Whether ``cls(**{name: ...})`` takes a keyword of that name."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return lambda name: True
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return lambda name: False  # a **params check: `*_env` keys are ours to resolve
    return lambda name: name in parameters
