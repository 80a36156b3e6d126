"""MySQL/MariaDB check: up when ``SELECT 1`` answers 1 (aiomysql)."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from .._optional import require
from .._redact import redact_url
from .base import BaseMetric, close_politely, parse_port

aiomysql: Any = require("aiomysql", "mysql")


class MySQLMetric(BaseMetric):
    """Up when MySQL or MariaDB accepts a connection and answers ``SELECT 1``.

    The connection is closed after each run. Give either ``dsn``
    (``mysql://user:password@host:port/database``) or the parts.

    Args:
        database: the database name.
        user: the user to log in as.
        password: its password (never shown).
        host: the server's host (default ``localhost``).
        port: its port (default 3306; an int or a numeric string).
        dsn: all of the above as one URL.
    """

    kind: ClassVar[str] = "mysql"

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
            parts = urlsplit(dsn)
            if parts.scheme not in ("mysql", "mariadb"):
                raise ValueError(f"dsn: expected a mysql:// URL, got {redact_url(dsn)!r}")
            host, port = parts.hostname, parts.port
            user = unquote(parts.username) if parts.username else user
            password = unquote(parts.password) if parts.password else password
            database = unquote(parts.path[1:]) if len(parts.path) > 1 else database
        self.database = database
        self.user = user
        self._password = password
        self.host = host or "localhost"
        self.port = parse_port(port if port is not None else 3306)

    async def check(self) -> bool:
        """Connect, ``SELECT 1``, close; the socket is closed whatever happens."""
        # aiomysql.connect() leaves the socket open when cancelled during the handshake
        # (its clean-up catches Exception only), so we hold the Connection from the start.
        conn = aiomysql.Connection(
            host=self.host, port=self.port, user=self.user, password=self._password or "",
            db=self.database, autocommit=None,
        )  # fmt: skip
        try:
            await conn._connect()
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
                row = await cursor.fetchone()
            await close_politely(conn.ensure_closed, conn.close)
            return bool(row == (1,))
        finally:
            conn.close()

    def __repr__(self) -> str:
        return (
            f"MySQLMetric(database={self.database!r}, user={self.user!r}, "
            f"host={self.host!r}, port={self.port!r})"
        )
