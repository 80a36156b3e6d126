"""Values in messages: shown short, whatever they are."""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["bounded_repr"]

_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3  # nesting shown; deeper (or self-referencing) values end in "..."
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlong = 40
for _attr in ("maxdict", "maxlist", "maxtuple", "maxset", "maxfrozenset", "maxdeque"):
    setattr(_SHORT, _attr, 6)


def bounded_repr(value: Any, limit: int = 100) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters, in time
    linear in that limit: deep, self-referencing, huge or hostile values are cut, never
    expanded, and a repr that raises is replaced by the type's name."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a repr that fails (an int past str()'s digit limit...)
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
