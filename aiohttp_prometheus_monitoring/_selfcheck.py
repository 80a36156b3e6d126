"""Self-checks: an HTTP check of the app's own port waits for the port before its first run.

aiohttp starts the cleanup contexts (and so the checks) before its sites bind their ports,
so a check of the app itself would read a false 0 on its first run. Such a check's first run
waits until a TCP connect to its target succeeds, for at most its ``sleep_time``; nothing is
recorded meanwhile, and a check that has not run is not shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

POLL_INTERVAL = 0.05  # seconds between two connect attempts
CONNECT_TIMEOUT = 0.5
_DEFAULT_PORTS = {"http": 80, "https": 443}


def listen_target(kind: str, params: Mapping[str, Any]) -> tuple[str, int] | None:
    """Host and port an HTTP check connects to, or None for other checks."""
    url = params.get("url")
    if kind != "http" or not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8, ``::1`` or ``0.0.0.0``."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


async def wait_listening(host: str, port: int, bound: float) -> bool:
    """Wait until something accepts TCP connections at ``host:port``, for at most ``bound``
    seconds; whether it did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while True:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            if loop.time() + POLL_INTERVAL >= deadline:
                return False
            await asyncio.sleep(POLL_INTERVAL)
            continue
        writer.close()
        with contextlib.suppress(OSError):  # the peer closed first: it listened all the same
            await writer.wait_closed()
        return True
