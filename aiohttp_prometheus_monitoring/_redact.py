"""Keeping secrets out of reprs, logs, metrics and error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from _aiohttp_booster.urls import MASK, mask_url_passwords

__all__ = ["MASK", "is_secret_key", "redact", "safe_repr", "secrets_of"]

_SECRET_KEY = re.compile(r"pass|secret|token|auth|api_?key|credential", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """True for parameter names that carry credentials (password, token, Authorization...)."""
    return bool(_SECRET_KEY.search(key))


def secrets_of(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The secret strings found in check params: secret-named values and URL passwords."""
    found: set[str] = set()
    for key, value in params.items():
        if isinstance(value, Mapping):
            found.update(secrets_of(value))
        elif isinstance(value, str):
            if is_secret_key(key):
                found.add(value)
            elif "://" in value:
                try:
                    password = urlsplit(value).password
                except ValueError:
                    password = None
                if password:
                    found.add(password)
        elif is_secret_key(key) and value is not None:
            found.add(str(value))
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret and every URL password replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return mask_url_passwords(text)


def safe_repr(key: str, value: Any) -> str:
    """``repr(value)`` for messages, masked when ``key`` names a secret."""
    if is_secret_key(key):
        return repr(MASK)
    if isinstance(value, str):
        return repr(redact(value))
    return redact(repr(value))
