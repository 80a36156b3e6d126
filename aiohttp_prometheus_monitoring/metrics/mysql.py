"""MySQL/MariaDB check: up when ``SELECT 1`` answers 1 (aiomysql)."""

from __future__ import annotations

from typing import Any, ClassVar

from _aiohttp_booster.optional import require

from .._deprecation import RemovedAttribute
from ._sql import SqlMetric
from .base import close_politely

__all__ = ["MySQLMetric"]

aiomysql: Any = require("aiomysql", "mysql")


class MySQLMetric(SqlMetric):
    """Up when MySQL or MariaDB accepts a connection and answers ``SELECT 1``.

    The connection is closed after each run. Give either ``dsn``
    (``mysql://user:password@host:port/database``) or the parts: ``database``, ``user``,
    ``password`` (never shown), ``host`` (default ``localhost``) and ``port`` (default 3306;
    an int or a numeric string).
    """

    kind: ClassVar[str] = "mysql"
    # 0.1.5's helper of check(): reading it says what replaces it
    select_one = RemovedAttribute("use await MySQLMetric(...).check(), which runs SELECT 1")
    schemes: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")
    default_port: ClassVar[int] = 3306

    async def check(self) -> bool:
        """Connect, ``SELECT 1``, close; the socket is closed whatever happens."""
        # aiomysql.connect()'s clean-up catches Exception only, so a handshake cut short by the
        # check's timeout leaves the socket to the garbage collector. We hold the Connection
        # from the start and connect it with its public ping() (which connects a connection
        # that never was), so that the finally below closes it whatever happens.
        host, port, user, password, database = self.parts()  # aiomysql takes no URL
        conn = aiomysql.Connection(
            host=host, port=port, user=user, password=password or "", db=database,
            autocommit=None,
        )  # fmt: skip
        try:
            await conn.ping(reconnect=True)
            async with conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
                row = await cursor.fetchone()
            await close_politely(conn.ensure_closed, conn.close)
            return bool(row == (1,))
        finally:
            conn.close()
