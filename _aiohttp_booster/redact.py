"""Keeping secrets out of reprs, logs, metrics and error messages, and messages short (both
libraries show values through it).

Every value a message quotes goes through :func:`shown`, every foreign text (an exception's
message) through :func:`one_line`. Both mask the secrets first, on the whole text, and cut
after: cutting first could leave half a password. Both take time linear in their input and
give at most a few hundred characters, whatever the input: huge, deeply nested or
self-referencing values, ints past ``str()``'s digit limit, lone surrogates, control
characters.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from typing import Any

from _aiohttp_booster.urls import MASK, mask_url, mask_url_passwords, url_passwords

__all__ = [
    "MASK", "SHOWN_CHARS", "is_secret_key", "one_line", "redact", "safe_repr", "secrets_of",
    "shown", "type_name",
]  # fmt: skip

_SECRET_KEY = re.compile(r"pass|secret|token|auth|api[-_]?key|credential|cookie", re.IGNORECASE)
#: characters of a value a message shows (then "... (N characters)")
SHOWN_CHARS = 100
_NESTED_CHARS = 40  # of a string inside a container
_NESTED_LONGEST = 1000  # a longer string inside a container is shown by its length alone
_DEPTH = 3  # containers shown inside each other; deeper ones are "..."
_ITEMS = 6  # items shown of a container
_INT_BITS = 200  # a larger int (about 60 digits) is shown by its size
#: a foreign text (an exception's message) in a message: at most this many characters
TEXT_CHARS = 300
_SHOWN_TYPES = (complex, datetime.date, datetime.time, datetime.timedelta)
# control characters, line breaks and lone surrogates, escaped as repr() escapes them
_ESCAPES = {
    code: repr(chr(code))[1:-1]
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0xD800, 0xE000))
}


def is_secret_key(key: object) -> bool:
    """True for parameter names that carry credentials (password, token, Authorization...)."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def secrets_of(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The secret strings found in check params, however deeply nested: the values under
    secret-named keys, and what could be the password of any string that looks like a URL.

    An iterative walk that visits each container once, so self-referencing or deeply
    nested params cost time linear in their size. Longest first.
    """
    found: set[str] = set()
    seen: set[int] = set()
    stack: list[tuple[Any, bool]] = [(params, False)]  # a value, and whether it is secret
    while stack:
        value, secret = stack.pop()
        if isinstance(value, str):
            if secret:
                found.add(value)
            found.update(url_passwords(value))
        elif isinstance(value, Mapping | list | tuple | set | frozenset):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, Mapping):
                for key, item in value.items():
                    stack.append((key, False))
                    stack.append((item, secret or is_secret_key(key)))
            else:
                stack.extend((item, secret) for item in value)
        elif secret and _is_small_number(value):
            found.add(repr(value))
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def _is_small_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, int) or abs(value).bit_length() <= _INT_BITS


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret (also as ``repr`` would escape it) and every URL
    password replaced by ``***``. Linear in ``len(text)`` for each secret."""
    for secret in secrets:
        for form in {secret, repr(secret)[1:-1]}:
            if form and form in text:
                text = text.replace(form, MASK)
    return mask_url_passwords(text)


def one_line(text: str, secrets: Iterable[str] = (), limit: int = TEXT_CHARS) -> str:
    """A foreign text (an exception's message) for a message: secrets masked, then cut to
    ``limit`` characters, control characters and lone surrogates escaped (one line)."""
    masked = redact(text, secrets)
    cut = masked[:limit].translate(_ESCAPES)
    return cut if len(masked) <= limit else f"{cut}... ({len(masked)} characters)"


def type_name(value: Any) -> str:
    """The name of ``value``'s type, short and on one line."""
    return one_line(type(value).__name__, limit=60)


def _masked(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return mask_url(text)


def _str(value: str, secrets: tuple[str, ...], limit: int) -> str:
    masked = _masked(value, secrets)
    text = repr(masked[:limit])
    return text if len(masked) <= limit else f"{text}... ({len(masked)} characters)"


def _bytes(value: bytes | bytearray, secrets: tuple[str, ...], limit: int) -> str:
    # latin-1 maps each byte to one character and back: mask as text, show as bytes
    forms = [s.encode("utf-8", "surrogatepass").decode("latin-1") for s in secrets]
    masked = _masked(bytes(value).decode("latin-1"), (*secrets, *forms))
    text = repr(masked[:limit].encode("latin-1"))
    return text if len(masked) <= limit else f"{text}... ({len(masked)} bytes)"


def _int(value: int) -> str:
    bits = abs(value).bit_length()
    if bits <= _INT_BITS:
        return repr(value)
    return f"<an int of about {int(bits * 0.30103) + 1} digits>"


def _items(value: Any, secrets: tuple[str, ...], depth: int) -> str:
    """The first items of a container, each shown short."""
    if isinstance(value, Mapping):
        pairs = []
        for count, (key, item) in enumerate(value.items()):
            if count == _ITEMS:
                pairs.append("...")
                break
            shown_item = repr(MASK) if is_secret_key(key) else _shown(item, secrets, depth + 1)
            pairs.append(f"{_shown(key, secrets, depth + 1)}: {shown_item}")
        return ", ".join(pairs)
    parts = []
    for count, item in enumerate(value):
        if count == _ITEMS:
            parts.append("...")
            break
        parts.append(_shown(item, secrets, depth + 1))
    return ", ".join(parts)


_BRACKETS = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("{", "}"),
             dict: ("{", "}")}  # fmt: skip


def _shown(value: Any, secrets: tuple[str, ...], depth: int) -> str:
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return _int(value)
    nested = depth > 0
    if isinstance(value, str | bytes | bytearray):
        if nested and len(value) > _NESTED_LONGEST:
            return f"<{type_name(value)} of {len(value)} characters>"
        limit = _NESTED_CHARS if nested else SHOWN_CHARS
        if isinstance(value, str):
            return _str(value, secrets, limit)
        return _bytes(value, secrets, limit)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        kind = next((k for k in _BRACKETS if isinstance(value, k)), dict)
        opening, closing = _BRACKETS[kind]
        if depth >= _DEPTH:
            return f"{opening}...{closing}"
        inner = _items(value, secrets, depth)
        if kind is tuple and len(value) == 1:
            inner += ","
        text = f"{opening}{inner}{closing}"
        if type(value) not in (list, tuple, set, dict):
            text = f"{type_name(value)}({text})"
        if nested:
            return text
        if len(text) > SHOWN_CHARS:
            return f"{text[:SHOWN_CHARS]}... ({len(value)} items)"
        return text if len(value) <= _ITEMS else f"{text} ({len(value)} items)"
    if isinstance(value, _SHOWN_TYPES):
        return one_line(repr(value), secrets, limit=_NESTED_CHARS if nested else SHOWN_CHARS)
    return f"<{type_name(value)} object>"


def shown(value: Any, secrets: Iterable[str] = ()) -> str:
    """``repr(value)`` for a message, in about :data:`SHOWN_CHARS` characters: URL
    passwords, the given secrets and the values of secret-named keys masked, strings cut
    (with their length), containers shown to a depth of 3 and 6 items each, huge ints by
    their size, objects of other types by their type. Never calls a ``__repr__`` of the
    caller's classes."""
    secret_tuple = tuple(secrets)
    return _shown(value, secret_tuple, 0)


def safe_repr(key: str, value: Any, secrets: Iterable[str] = ()) -> str:
    """:func:`shown` of a value, or ``'***'`` when ``key`` names a secret."""
    if is_secret_key(key):
        return repr(MASK)
    return shown(value, secrets)
