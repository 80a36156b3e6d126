"""Validating configuration values: a check's ``params`` against the keywords its class
accepts, durations, secrets taken from the environment, and the did-you-mean of a typo."""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from _aiohttp_booster.limits import MAX_SECONDS
from _aiohttp_booster.redact import safe_repr, shown, type_name

_SIMPLE = (str, int, float, bool, type(None))


__all__ = [
    "MAX_SECONDS", "accepts", "did_you_mean", "encodable", "from_env", "key_name", "number",
    "param_problems", "resolve_env", "seconds",
]  # fmt: skip

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")  # an environment variable's name
_LONGEST_WORD = 100  # a longer unknown key gets no did-you-mean (difflib is quadratic)


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a mistyped ``word``, else ``''``."""
    if not isinstance(word, str) or len(word) > _LONGEST_WORD:
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def key_name(key: Any) -> str:
    """A key as a message names it: a short identifier as it is, anything else shown."""
    if isinstance(key, str) and key.isidentifier() and len(key) <= 60:
        return key
    return shown(key)


def encodable(text: str) -> bool:
    """Whether UTF-8 can encode ``text`` (it holds no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def number(value: Any, highest: float) -> bool:
    """Whether ``value`` is an int or float in (0, ``highest``]: not a bool, not NaN, not
    infinite (compared as numbers: an int too large for a float is simply too large)."""
    return _is_number(value) and 0 < value <= highest


def seconds(key: str, value: Any) -> tuple[float | None, str | None]:
    """A duration in seconds: a number > 0 and at most :data:`MAX_SECONDS`, or None and
    the problem (naming ``key``)."""
    if not _is_number(value) or value != value:  # NaN is not equal to itself
        return None, f"{key}: expected a number of seconds, got {safe_repr(key, value)}"
    if value <= 0:
        return None, f"{key}: must be > 0, got {safe_repr(key, value)}"
    if value > MAX_SECONDS:
        return None, (
            f"{key}: must be at most {MAX_SECONDS:.0f} seconds (366 days), "
            f"got {safe_repr(key, value)}"
        )
    return float(value), None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def from_env(key: str, variable: Any) -> tuple[str | None, str | None]:
    """The value of the environment variable a ``<key>_env`` setting names, or None and the
    problem (naming the key and the variable, never a value)."""
    name = key_name(key)
    if not isinstance(variable, str) or not variable:
        return None, (
            f"{name}_env: expected the name of an environment variable, got {type_name(variable)}"
        )
    try:
        value = os.environ.get(variable)
    except ValueError:  # UnicodeEncodeError: a lone surrogate the OS cannot take
        value = None
    if value is not None:
        return value, None
    if _VARIABLE.fullmatch(variable):
        return None, f"{name}_env: environment variable {variable!r} is not set"
    # not a variable's name: perhaps the secret itself, given by mistake; never shown
    return None, (
        f"{name}_env: no environment variable has the name given ({len(variable)} characters, "
        "not shown: a name is letters, digits and '_')"
    )


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


_Signature = tuple[dict[str, inspect.Parameter], bool, dict[str, Any]]


def _signature(cls: type) -> _Signature | None:
    """The keywords ``cls`` accepts, whether it takes any, and their type hints (None when
    its signature cannot be read); read once per class."""
    try:
        return _cached_signature(cls)
    except TypeError:  # a class its metaclass made unhashable: read it every time
        return _read_signature(cls)


def _read_signature(cls: type) -> _Signature | None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a class whose signature cannot be read: trust it
        return None
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
    return accepted, takes_any, hints


_cached_signature = functools.lru_cache(maxsize=256)(_read_signature)


def param_problems(cls: type, params: Mapping[str, Any], secrets: Iterable[str] = ()) -> list[str]:
    """What is wrong with building ``cls(**params)``: unknown, missing or mistyped keywords.

    Values are shown short, with ``secrets`` and URL passwords masked."""
    read = _signature(cls)
    if read is None:
        return []
    accepted, takes_any, hints = read
    problems: list[str] = []
    for key in params:
        if key not in accepted and not takes_any:
            hint = did_you_mean(key, accepted)
            problems.append(f"params: unexpected keyword {shown(key, secrets)}{hint}")
    for name, param in accepted.items():
        if param.default is param.empty and name not in params:
            problems.append(f"params: missing required keyword {name!r}")
    for key, value in params.items():
        kinds = _simple_types(hints.get(key)) if key in accepted else None
        if kinds is not None and not _matches(value, kinds):
            problems.append(
                f"params: {key!r} expects {_type_name(kinds)}, "
                f"got {type_name(value)} {safe_repr(key, value, secrets)}"
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
            problems.append(f"params: give either {shown(target)} or {shown(key)}, not both")
            continue
        resolved[target], problem = from_env(target, value)
        if problem is not None:
            problems.append(f"params: {problem}")
    return resolved, problems


def accepts(cls: type) -> Callable[[str], bool]:
    """Whether ``cls(**{name: ...})`` takes a keyword of that name."""
    read = _signature(cls)
    if read is None:
        return lambda name: True
    accepted, takes_any, _ = read
    if takes_any:
        return lambda name: False  # a **params check: `*_env` keys are ours to resolve
    return lambda name: name in accepted
