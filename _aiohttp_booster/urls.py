"""URLs in messages: the password of a URL's userinfo masked wherever a URL is shown."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MASK", "mask_url", "mask_url_passwords"]

MASK = "***"
# scheme://user:password@host: the part between ':' and '@' of the userinfo.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@/\s]*(?=@)")


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked."""
    return _URL_PASSWORD.sub(rf"\g<head>{MASK}", text)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for reprs, logs and errors.

    A URL the parser refuses is masked by pattern instead, never shown as given.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return mask_url_passwords(url)
    if password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{netloc}"))
