"""Redis check: up when the server answers PING. It never writes anything."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from _aiohttp_booster.optional import require
from _aiohttp_booster.redact import shown
from _aiohttp_booster.urls import AT_AFTER_HOST, at_after_host

from .._deprecation import RemovedAttribute
from .base import BaseMetric, parse_port

__all__ = ["RedisMetric"]

# redis-py's annotations are partial (untyped connect()), so we treat it as untyped here.
redis_asyncio: Any = require("redis.asyncio", "redis")
redis_retry: Any = require("redis.asyncio.retry", "redis")
redis_backoff: Any = require("redis.backoff", "redis")

# Without these, redis-py sends CLIENT SETINFO on connect; redis-py 7+ takes driver_info.
_NO_CLIENT_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(redis_asyncio.Redis.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)


class RedisMetric(BaseMetric):
    """Up when Redis answers PING, on a connection of its own closed after each run.

    Give either ``url`` (``redis://[:password@]host:port/db``, ``rediss://`` for TLS) or
    ``host``/``port`` and the rest.

    Args:
        host: the server's host (default ``localhost``).
        port: its port (default 6379; an int or a numeric string).
        db: the database number to select.
        password: the password, if the server wants one (never shown).
        username: the ACL user name, with ``password``.
        ssl: connect with TLS.
        url: all of the above as one URL.
    """

    kind: ClassVar[str] = "redis"
    # 0.1.5's helper of check(): reading it says what replaces it
    set_redis_value = RemovedAttribute(
        "use await RedisMetric(host=..., port=...).check(), which sends PING (this wrote a key)"
    )

    def __init__(
        self,
        host: str | None = None,
        port: int | str | None = None,
        db: int = 0,
        password: str | None = None,
        username: str | None = None,
        ssl: bool = False,
        url: str | None = None,
    ) -> None:
        if url is not None and (host is not None or port is not None):
            raise ValueError("give either url or host/port, not both")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://"))
        ):
            raise ValueError(f"url: expected a redis:// or rediss:// URL, got {shown(url)}")
        if url is not None and at_after_host(url):
            raise ValueError(f"url: {shown(url)} is ambiguous, {AT_AFTER_HOST}")
        self.url = url
        self.host = host or "localhost"
        self.port = parse_port(port if port is not None else 6379)
        self.db = db
        self.username = username
        self._password = password
        self.ssl = ssl

    def _connection(self) -> Any:
        # No retries, no HELLO (RESP2), no CLIENT SETINFO: PING (after AUTH/SELECT when
        # configured) is all we send. We hold the connection object ourselves, so that a
        # run cancelled at any point still finds the socket to close.
        options: dict[str, Any] = {
            "protocol": 2,
            "retry": redis_retry.Retry(redis_backoff.NoBackoff(), 0),
            **_NO_CLIENT_SETINFO,
        }
        if self.url is not None:
            pool = redis_asyncio.ConnectionPool.from_url(self.url, **options)
            return pool.make_connection()
        connection_class = redis_asyncio.SSLConnection if self.ssl else redis_asyncio.Connection
        return connection_class(
            host=self.host, port=self.port, db=self.db, username=self.username,
            password=self._password, **options,
        )  # fmt: skip

    async def check(self) -> bool:
        """PING on a fresh connection, closed whatever happens."""
        connection = self._connection()
        try:
            await connection.connect()
            await connection.send_command("PING")
            return bool(await connection.read_response())
        finally:
            await connection.disconnect(nowait=True)

    def __repr__(self) -> str:
        if self.url is not None:
            return f"RedisMetric(url={shown(self.url)})"
        return f"RedisMetric(host={self.host!r}, port={self.port!r}, db={self.db!r})"
