"""HTTP check: a request to a URL, up when the answer's status is an expected one."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import ClassVar

import aiohttp

from _aiohttp_booster.urls import mask_url

from .._redact import MASK, is_secret_key
from .base import BaseMetric

__all__ = ["HttpMetric"]


class HttpMetric(BaseMetric):
    """Up when ``method url`` answers within ``timeout`` with an expected status.

    Args:
        url: the URL to request.
        timeout: seconds for the whole request, connection included.
        verify_ssl: check the server's TLS certificate.
        method: the HTTP method.
        expected_statuses: statuses that mean up; default any 2xx.
        headers: request headers (an ``Authorization`` value is never shown).
    """

    kind: ClassVar[str] = "http"

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        verify_ssl: bool = True,
        method: str = "GET",
        expected_statuses: Collection[int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected an http:// or https:// URL, got {mask_url(url)!r}")
        if isinstance(timeout, bool) or not timeout > 0:
            raise ValueError(f"timeout: expected a number of seconds > 0, got {timeout!r}")
        self.url = url
        self.timeout = float(timeout)
        self.verify_ssl = verify_ssl
        self.method = method.upper()
        self.expected_statuses = frozenset(expected_statuses or range(200, 300))
        self.headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def check(self) -> bool:
        """One request on a connection of its own, closed before returning.

        The client session is made once, on the first run (so on the loop that runs the
        checks), and kept until :meth:`close`; its connector keeps no connection alive, so
        each run still opens a fresh one and closes it.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.verify_ssl, force_close=True),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        async with self._session.request(
            self.method, self.url, headers=self.headers, allow_redirects=True
        ) as response:
            return response.status in self.expected_statuses

    async def close(self) -> None:
        """Close the client session; called once when monitoring stops."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def __repr__(self) -> str:
        headers = {k: MASK if is_secret_key(k) else v for k, v in self.headers.items()}
        return (
            f"HttpMetric(url={mask_url(self.url)!r}, timeout={self.timeout!r}, "
            f"verify_ssl={self.verify_ssl!r}, method={self.method!r}, headers={headers!r})"
        )
