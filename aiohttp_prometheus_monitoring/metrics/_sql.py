"""What the SQL checks share: a server given as parts or as one URL (``dsn``)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import unquote, urlsplit

from _aiohttp_booster.redact import shown
from _aiohttp_booster.urls import AT_AFTER_HOST, at_after_host

from .base import BaseMetric, parse_port

__all__ = ["SqlMetric"]


class SqlMetric(BaseMetric):
    """A SQL server to log in to, given as parts or as one URL; checked by its subclass.

    Args:
        database: the database name.
        user: the user (role) to log in as.
        password: its password (never shown).
        host: the server's host.
        port: its port (an int or a numeric string).
        dsn: all of the above as one URL, e.g. ``postgresql://user:password@host:port/db``.

    Raises:
        ValueError: both ``dsn`` and host/port, a URL of another scheme, or a bad port.
    """

    #: URL schemes of ``dsn``, the usual one first
    schemes: ClassVar[tuple[str, ...]]
    #: the server's port when neither ``port`` nor ``dsn`` gives one
    default_port: ClassVar[int]

    def __init__(
        self,
        database: str | None = None,
        user: str | None = None,
        password: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        dsn: str | None = None,
    ) -> None:
        if dsn is not None:
            if host is not None or port is not None:
                raise ValueError("give either dsn or host/port, not both")
            if not isinstance(dsn, str) or not dsn.startswith(
                tuple(f"{s}://" for s in self.schemes)
            ):
                raise ValueError(f"dsn: expected a {self.schemes[0]}:// URL, got {shown(dsn)}")
            if at_after_host(dsn):
                raise ValueError(f"dsn: {shown(dsn)} is ambiguous, {AT_AFTER_HOST}")
            try:
                urlsplit(dsn).port  # noqa: B018 - reading it checks it
            except ValueError:  # urllib's message quotes the netloc: not shown
                raise ValueError(
                    f"dsn: cannot read the host and port of {shown(dsn)} (a port from 1 to "
                    "65535; a '/', '?', '#', '@', '[' or ']' in the password percent-encoded)"
                ) from None
        self.dsn = dsn
        self.database = database
        self.user = user
        self._password = password
        self.host = host if host is not None or dsn is not None else "localhost"
        self.port = parse_port(port) if port is not None else (None if dsn else self.default_port)

    def parts(self) -> tuple[str, int, str | None, str | None, str | None]:
        """Host, port, user, password and database, from ``dsn`` where it gives them."""
        if self.dsn is None:
            assert self.host is not None
            assert self.port is not None
            return self.host, self.port, self.user, self._password, self.database
        url = urlsplit(self.dsn)
        return (
            url.hostname or "localhost",
            parse_port(url.port or self.default_port),
            unquote(url.username) if url.username else self.user,
            unquote(url.password) if url.password else self._password,
            unquote(url.path[1:]) if len(url.path) > 1 else self.database,
        )

    def __repr__(self) -> str:
        if self.dsn is not None:
            return f"{type(self).__name__}(dsn={shown(self.dsn)})"
        return (
            f"{type(self).__name__}(database={self.database!r}, user={self.user!r}, "
            f"host={self.host!r}, port={self.port!r})"
        )
