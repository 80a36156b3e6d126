"""HTTP check: a request to a URL, up when the answer's status is an expected one."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import ClassVar

import aiohttp

from _aiohttp_booster.redact import MASK, is_secret_key, shown
from _aiohttp_booster.urls import AT_AFTER_HOST, at_after_host

from .._deprecation import RemovedAttribute
from .._params import seconds
from .base import BaseMetric

__all__ = ["HttpMetric"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")  # an HTTP method (RFC 9110 token)


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
    # 0.1.5's helper of check(): reading it says what replaces it
    http_get_status = RemovedAttribute(
        "use await HttpMetric(url=...).check(): True for an expected status (any 2xx by "
        "default; expected_statuses=[200] for 0.1.5's)"
    )

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        verify_ssl: bool = True,
        method: str = "GET",
        expected_statuses: Collection[int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected an http:// or https:// URL, got {shown(url)}")
        if at_after_host(url):
            raise ValueError(f"url: {shown(url)} is ambiguous, {AT_AFTER_HOST}")
        seconds_, problem = seconds("timeout", timeout)
        if seconds_ is None:
            raise ValueError(problem)
        if not isinstance(method, str) or not _TOKEN.fullmatch(method):
            raise ValueError(f"method: expected an HTTP method (GET, HEAD...), got {shown(method)}")
        if headers is not None and not (
            isinstance(headers, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise ValueError(f"headers: expected a dict of str to str, got {shown(headers)}")
        self.url = url
        self.timeout = seconds_
        self.verify_ssl = verify_ssl
        self.method = method.upper()
        statuses = list(expected_statuses or range(200, 300))
        if not all(type(s) is int and 100 <= s <= 599 for s in statuses):
            raise ValueError(
                f"expected_statuses: expected HTTP statuses (ints 100-599), got {shown(statuses)}"
            )
        self.expected_statuses = frozenset(statuses)
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
            f"HttpMetric(url={shown(self.url)}, timeout={self.timeout!r}, "
            f"verify_ssl={self.verify_ssl!r}, method={self.method!r}, headers={shown(headers)})"
        )
