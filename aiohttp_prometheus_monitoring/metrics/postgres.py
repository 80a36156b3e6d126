"""PostgreSQL check: up when ``SELECT 1`` answers 1 (asyncpg)."""

from __future__ import annotations

from typing import Any, ClassVar

from _aiohttp_booster.optional import require

from .._deprecation import RemovedAttribute
from ._sql import SqlMetric
from .base import close_politely

__all__ = ["PostgresMetric"]

asyncpg: Any = require("asyncpg", "postgres")  # asyncpg ships no type hints


class PostgresMetric(SqlMetric):
    """Up when PostgreSQL accepts a connection and answers ``SELECT 1``.

    The connection is closed after each run. Give either ``dsn``
    (``postgresql://user:password@host:port/database``) or the parts: ``database``,
    ``user`` (the role), ``password`` (never shown), ``host`` (default ``localhost``) and
    ``port`` (default 5432; an int or a numeric string).
    """

    kind: ClassVar[str] = "postgres"
    # 0.1.5's helper of check(): reading it says what replaces it
    select_one = RemovedAttribute("use await PostgresMetric(...).check(), which runs SELECT 1")
    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")
    default_port: ClassVar[int] = 5432

    async def check(self) -> bool:
        """Connect, ``SELECT 1``, close; the connection is dropped if closing stalls."""
        conn = await asyncpg.connect(  # given a dsn, asyncpg reads the parts it omits from it
            self.dsn, host=self.host, port=self.port, user=self.user,
            password=self._password, database=self.database,
        )  # fmt: skip
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await close_politely(conn.close, conn.terminate)
