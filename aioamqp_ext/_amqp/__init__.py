"""The AMQP layer: the only code that imports aioamqp and pamqp, and every private name of
theirs we use.

aioamqp 0.15 (its last release, 2022) is used through private names where its public API
falls short (each is listed, with why, in docs/development.md):

- ``transport``: ``AmqpProtocol._heartbeat_recv`` (overridden: a stalled link is aborted, not
  closed), ``_heartbeat_last_recv``, ``_stream_writer`` (its transport, and its
  ``writelines`` for frames we encode), ``_drain``, ``_heartbeat_send_worker`` and the
  protocol's task attributes (``worker``, ``_heartbeat_recv_worker``), cancelled on close;
- ``frames``: pamqp's public marshalling, plus the commonest frames encoded by hand (tested
  byte for byte against pamqp).

The extra is checked first: without it, importing any part of ``aioamqp_ext`` raises an
ImportError naming the ``amqp`` extra. Then the installed aioamqp must be a release these
hooks are tested with (:data:`AIOAMQP_TESTED`); any other fails at import, saying so.
"""

from __future__ import annotations

from _aiohttp_booster.optional import require
from _aiohttp_booster.version import within

_aioamqp = require("aioamqp", "amqp")
require("pamqp", "amqp")

#: aioamqp releases the private hooks of this package are tested with: [low, high)
AIOAMQP_TESTED = ((0, 15), (0, 16))


def check_aioamqp(version: str) -> None:
    """Refuse an aioamqp release outside :data:`AIOAMQP_TESTED`.

    Raises:
        ImportError: naming the release found and the range to install.
    """
    low, high = AIOAMQP_TESTED
    if not within(version, low, high):
        wanted = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        raise ImportError(
            f"aioamqp_ext works with aioamqp {wanted} (it relies on internals tested with "
            f"those releases); found aioamqp {version}: pip install 'aioamqp{wanted}'",
            name="aioamqp",
        )


check_aioamqp(str(getattr(_aioamqp, "__version__", "unknown")))

from .delivery import Delivery  # noqa: E402  # after the checks above, by design
from .transport import Connection  # noqa: E402

__all__ = ["AIOAMQP_TESTED", "Connection", "Delivery", "check_aioamqp"]
