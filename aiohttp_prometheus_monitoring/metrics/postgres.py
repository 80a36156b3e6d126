"""PostgreSQL check: up when ``SELECT 1`` answers 1 (asyncpg)."""

from __future__ import annotations

from typing import Any, ClassVar

from .._optional import require
from .._redact import redact_url
from .base import BaseMetric, close_politely, parse_port

asyncpg: Any = require("asyncpg", "postgres")  # asyncpg ships no type hints


class PostgresMetric(BaseMetric):
    """Up when PostgreSQL accepts a connection and answers ``SELECT 1``.

    The connection is closed after each run. Give either ``dsn``
    (``postgresql://user:password@host:port/database``) or the parts.

    Args:
        database: the database name.
        user: the role to log in as.
        password: its password (never shown).
        host: the server's host (default ``localhost``).
        port: its port (default 5432; an int or a numeric string).
        dsn: all of the above as one URL.
    """

    kind: ClassVar[str] = "postgres"

    def __init__(
        self,
        database: str | None = None,
        user: str | None = None,
        password: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        dsn: str | None = None,
    ) -> None:
        if dsn is not None and (host is not None or port is not None):
            raise ValueError("give either dsn or host/port, not both")
        if dsn is not None and not dsn.startswith(("postgres://", "postgresql://")):
            raise ValueError(f"dsn: expected a postgresql:// URL, got {redact_url(dsn)!r}")
        self.dsn = dsn
        self.database = database
        self.user = user
        self._password = password
        self.host = host if host is not None or dsn is not None else "localhost"
        self.port = parse_port(port) if port is not None else (None if dsn else 5432)

    async def check(self) -> bool:
        """Connect, ``SELECT 1``, close; the connection is dropped if closing stalls."""
        conn = await asyncpg.connect(
            self.dsn, host=self.host, port=self.port, user=self.user,
            password=self._password, database=self.database,
        )  # fmt: skip
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await close_politely(conn.close, conn.terminate)

    def __repr__(self) -> str:
        if self.dsn is not None:
            return f"PostgresMetric(dsn={redact_url(self.dsn)!r})"
        return (
            f"PostgresMetric(database={self.database!r}, user={self.user!r}, "
            f"host={self.host!r}, port={self.port!r})"
        )
