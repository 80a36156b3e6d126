"""URLs in messages: the password of a URL masked wherever a URL is shown.

Masking reads the text alone, in one linear pass, and never asks a URL parser: a parser
refuses some URLs (a ``[`` or an unencoded ``/`` in the password, a bad port) and misreads
others (the part of a password after a ``/`` becomes a path), and its error messages quote
what it could not read. Here the password is, whatever a parser would make of it, everything
from the first ``:`` after ``scheme://`` (or after the start of a URL without a scheme) to the
last ``@``: masking too much is harmless, showing part of a password is not.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["AT_AFTER_HOST", "MASK", "at_after_host", "mask_url", "mask_url_passwords",
           "url_passwords"]  # fmt: skip

MASK = "***"
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*")
_SPACES = re.compile(r"(\s+)")


def _span_after(text: str, start: int) -> tuple[int, int] | None:
    """The password in ``text`` whose credentials start at ``start``: from after the
    first ``:`` to the last ``@``; None when there is no ``:`` before an ``@``."""
    at = text.rfind("@", start)
    if at < 0:
        return None
    colon = text.find(":", start, at)
    return None if colon < 0 else (colon + 1, at)


def _password_span(text: str) -> tuple[int, int] | None:
    """Where the password is in ``text``, the whole text being one URL (or None)."""
    separator = text.find("://")
    has_scheme = separator > 0 and _SCHEME.fullmatch(text, 0, separator) is not None
    return _span_after(text, separator + 3 if has_scheme else 0)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for reprs, logs and errors.

    Whatever a parser would make of it: ``redis://u:a/b@h`` (a ``/`` urllib would take for
    the start of the path) is ``redis://u:***@h``, ``u:pw@h`` (no scheme) is ``u:***@h``.
    A URL with no ``:`` before its ``@`` has no password and is left as it is. Linear in
    the length of ``url``; a value that is not a string is shown by its type alone.
    """
    given: object = url  # callers' types are not checked at run time
    if not isinstance(given, str):
        return f"<{type(given).__name__}, not a URL>"
    span = _password_span(url)
    return url if span is None else f"{url[: span[0]]}{MASK}{url[span[1] :]}"


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked.

    Free text: each run of non-space characters holding a ``://`` is masked as one URL
    would be (a password with spaces cannot be told from prose; give the known secrets to
    the caller's redaction for those). Linear in the length of ``text``.
    """
    if "://" not in text:
        return text
    pieces = _SPACES.split(text)
    for index, piece in enumerate(pieces):
        separator = piece.find("://")
        span = _span_after(piece, separator + 3) if separator >= 0 else None
        if span is not None:
            pieces[index] = f"{piece[: span[0]]}{MASK}{piece[span[1] :]}"
    return "".join(pieces)


#: what to say of a URL :func:`at_after_host` finds ambiguous
AT_AFTER_HOST = (
    "an '@' after the host: percent-encode a '/', '?' or '#' in the user or password "
    "(%2F, %3F, %23), or an '@' in the path (%40)"
)


def at_after_host(url: str) -> bool:
    """Whether ``url`` has an ``@`` after its host (in the path, query or fragment).

    Such a URL is ambiguous: ``amqp://u/x:pw@h/`` is, to urllib, host ``u`` and path
    ``/x:pw@h/`` (a vhost holding the password), where the user meant user ``u/x``. The
    built-in checks refuse it, so that no part of a password becomes a host or a path.
    """
    separator = url.find("://")
    if separator < 0:
        return False
    rest = url[separator + 3 :]
    ends = [index for index in (rest.find(c) for c in "/?#") if index >= 0]
    return rest.rfind("@") > min(ends, default=len(rest))


def url_passwords(url: str) -> tuple[str, ...]:
    """What could be the password of ``url`` (what :func:`mask_url` masks), as given and
    percent-decoded; () when it has none. These are the strings to keep out of messages (a
    driver may quote the decoded password). What urllib reads as the password is a part of
    it: where urllib misreads a URL, that part alone is no password to mask everywhere."""
    span = _password_span(url)
    if span is None:
        return ()
    password = url[span[0] : span[1]]
    return tuple({text for text in (password, unquote(password)) if text})
