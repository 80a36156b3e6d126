"""Connection and topology options of a producer or consumer, validated in one place."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from _aiohttp_booster.limits import MAX_SECONDS
from _aiohttp_booster.redact import shown
from _aiohttp_booster.urls import mask_url

from ._legacy import warn_deprecated
from .errors import ConfigurationError
from .serializers import JsonSerializer, Serializer, get_serializer

__all__ = [
    "CONSUMER_OPTIONS",
    "DEFAULT_URL",
    "PRODUCER_OPTIONS",
    "AmqpConfig",
    "BrokerUrl",
    "check_side",
    "mask_url",
]

#: The broker a producer or consumer connects to when given no ``url`` (the 2018 default).
DEFAULT_URL = "amqp://localhost:5672/"
_EXCHANGE_TYPES = ("direct", "topic", "fanout", "headers")


#: options only a consumer uses, with the values that leave it unused (not given)
CONSUMER_OPTIONS: Mapping[str, tuple[Any, ...]] = MappingProxyType({
    "prefetch_count": (1,), "prefetch_size": (0,), "dead_letter_exchange": (None,),
    "queue_arguments": (None, {}), "max_retries": (None, 0), "close_timeout": (30.0,),
    "retry_delays": (None, ()), "handler_timeout": (None,), "queue_depth_interval": (15.0,),
})  # fmt: skip
#: options only a producer uses, with the values that leave it unused (not given)
PRODUCER_OPTIONS: Mapping[str, tuple[Any, ...]] = MappingProxyType({"publisher_confirms": (True,)})
#: consumer options that aioamqp-ext 0.1 (2018) took on a producer too: there, they warn
_ACCEPTED_ON_BOTH_IN_2018 = ("prefetch_count", "prefetch_size")
#: the longest retry delay: RabbitMQ's x-message-ttl is at most 2**32 - 1 milliseconds
MAX_RETRY_DELAY = (2**32 - 1) / 1000
#: the shortest queue_depth_interval: at most ten passive declares a second per consumer
MIN_QUEUE_DEPTH_INTERVAL = 0.1


def check_side(where: str, side: str, options: Mapping[str, Any]) -> None:
    """Refuse the options of the other side (``side`` is ``'producer'`` or ``'consumer'``):
    a producer given ``max_retries`` would silently never retry anything.

    Args:
        where: the class being configured, named in messages.
        side: which side it is.
        options: the side-specific options as given (absent or at its default: not given).

    Raises:
        ConfigurationError: naming every option of the other side that was given.
    """
    other = "consumer" if side == "producer" else "producer"
    foreign = CONSUMER_OPTIONS if side == "producer" else PRODUCER_OPTIONS
    given = [name for name, unused in foreign.items() if options.get(name, unused[0]) not in unused]
    refused = [name for name in given if name not in _ACCEPTED_ON_BOTH_IN_2018]
    if refused:
        raise ConfigurationError(
            f"{where}: {', '.join(refused)}: {other} options, which a {side} does not use; "
            f"remove them, got {', '.join(f'{n}={shown(options[n])}' for n in refused)}"
        )
    for name in given:
        warn_deprecated(
            f"{where}: {name} is ignored by a {side} (a {other} option, accepted for "
            "compatibility with aioamqp-ext 0.1); remove it"
        )


_DURATIONS = ("connect_timeout", "publish_timeout", "close_timeout", "reconnect_delay",
              "reconnect_max_delay")  # fmt: skip
#: integer options, their largest value and why
_INTEGERS = (("prefetch_count", 65_535, "an AMQP short"),
             ("prefetch_size", 2**32 - 1, "an AMQP long"),
             ("max_retries", 1_000_000, "retries of one message"))  # fmt: skip


def _seconds(value: Any) -> bool:
    """A number of seconds in (0, MAX_SECONDS] (NaN, infinities and huge ints are not)."""
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and 0 < value <= MAX_SECONDS
    )


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _name_problem(value: Any) -> str | None:
    """What keeps ``value`` from being an AMQP name (a short string), or None."""
    if not isinstance(value, str):
        return "expected a str"
    if not _encodable(value):
        return "expected text UTF-8 can encode (no lone surrogates)"
    if len(value.encode()) > 255:
        return "expected at most 255 bytes in UTF-8 (an AMQP short string)"
    return None


def _retry_delays(where: str, delays: Sequence[float] | None) -> tuple[float, ...]:
    """``retry_delays`` as a tuple of seconds; () for None.

    Raises:
        ConfigurationError: empty, not numbers, or a delay not in (0.001, MAX_RETRY_DELAY].
    """
    if delays is None:
        return ()
    problem = f"{where}: retry_delays: expected a non-empty list of seconds between 0.001 and "
    problem += f"{MAX_RETRY_DELAY:.0f}, got {shown(delays)}"
    if isinstance(delays, str | bytes) or not isinstance(delays, Sequence) or not delays:
        raise ConfigurationError(problem)
    for delay in delays:
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise ConfigurationError(problem)
        try:
            if not 0.001 <= delay <= MAX_RETRY_DELAY:
                raise ConfigurationError(problem)
        except OverflowError:  # an int too large to compare with a float
            raise ConfigurationError(problem) from None
    return tuple(float(delay) for delay in delays)


def _process_name(who: str) -> str:
    """A connection name an operator can trace back to this process."""
    return f"{who} pid {os.getpid()} on {socket.gethostname()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerUrl:
    """One broker address parsed from an ``amqp://`` or ``amqps://`` URL.

    ``str()`` and ``repr()`` show the URL with its password masked.
    """

    url: str = field(repr=False)
    host: str
    port: int
    login: str
    password: str = field(repr=False)
    virtualhost: str
    ssl: bool

    @classmethod
    def parse(
        cls,
        url: str,
        *,
        where: str = "",
        login: str = "guest",
        password: str = "guest",  # noqa: S107 - RabbitMQ's well-known default login
        virtualhost: str = "/",
    ) -> BrokerUrl:
        """Parse and check ``url``; the parts it omits take the given defaults.

        Args:
            url: an ``amqp://`` or ``amqps://`` URL.
            where: what is being configured, put before ``url:`` in error messages.
            login: the user when the URL names none.
            password: the password when the URL gives none.
            virtualhost: the vhost when the URL's path names none.

        Raises:
            ConfigurationError: not a string, a scheme other than amqp/amqps, or a bad port.
        """
        prefix = f"{where}: url" if where else "url"
        if not isinstance(url, str):
            raise ConfigurationError(
                f"{prefix}: expected an amqp:// URL string, got {type(url).__name__}"
            )
        scheme, separator, _ = url.partition("://")
        if not separator or scheme.lower() not in ("amqp", "amqps"):
            # the scheme is the part before ':', or nothing: never a password
            shown = f"scheme {scheme[:20]!r}" if separator else "no scheme://"
            raise ConfigurationError(
                f"{prefix}: scheme must be amqp:// or amqps://, got {shown}"
                if separator
                else f"{prefix}: expected amqp://host or amqps://host, got a URL with {shown}"
            )
        try:
            parts = urlsplit(url)
            port = parts.port
            host = parts.hostname
        except ValueError:  # urllib's message quotes the netloc: the password with it
            raise ConfigurationError(  # and never quote what could not be read: it may hold one
                f"{prefix}: cannot read the host and port of the {scheme}:// URL (a port from 1 "
                "to 65535; a '/', '@', '[' or ']' in the user or password percent-encoded)"
            ) from None
        if not _encodable(url):
            raise ConfigurationError(f"{prefix}: expected text UTF-8 can encode")
        ssl = parts.scheme == "amqps"
        return cls(
            url=url,
            host=host or "localhost",
            port=port or (5671 if ssl else 5672),
            login=unquote(parts.username) if parts.username else login,
            password=unquote(parts.password) if parts.password else password,
            virtualhost=unquote(parts.path[1:]) if len(parts.path) > 1 else virtualhost,
            ssl=ssl,
        )

    @classmethod
    def from_parts(
        cls, *, host: str, port: int, login: str, password: str, virtualhost: str, ssl: bool
    ) -> BrokerUrl:
        """A broker address given as parts; its URL (shown in messages) omits the password."""
        scheme = "amqps" if ssl else "amqp"
        url = f"{scheme}://{quote(login, safe='')}@{host}:{port}/{quote(virtualhost, safe='')}"
        return cls(url=url, host=host, port=port, login=login, password=password,
                   virtualhost=virtualhost, ssl=ssl)  # fmt: skip

    @property
    def masked(self) -> str:
        """The URL with its password replaced by ``***``."""
        return mask_url(self.url)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"BrokerUrl({self.masked!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AmqpConfig:
    """Everything a producer or consumer needs to connect and declare its topology.

    Build it with :meth:`from_options` (what the constructors do), which accepts the
    constructor's looser input forms. Every field is checked in ``__post_init__``.
    """

    urls: tuple[BrokerUrl, ...]
    exchange: str = ""
    exchange_type: str = "topic"
    routing_keys: tuple[str, ...] = ()
    queue: str = ""
    prefetch_count: int = 1
    prefetch_size: int = 0
    serializer: Serializer = field(default_factory=JsonSerializer)
    durable: bool = True
    passive: bool = False
    dead_letter_exchange: str | None = None
    queue_arguments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    max_retries: int = 0
    retry_delays: tuple[float, ...] = ()
    handler_timeout: float | None = None
    queue_depth_interval: float | None = 15.0
    publisher_confirms: bool = True
    connect_timeout: float = 10.0
    publish_timeout: float = 30.0
    close_timeout: float = 30.0
    heartbeat: float = 60.0
    reconnect: bool = True
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 5.0
    connection_name: str = field(default_factory=lambda: _process_name("aioamqp_ext"))
    where: str = field(default="AmqpConfig", repr=False, compare=False)

    @classmethod
    def from_options(
        cls,
        *,
        where: str = "AmqpConfig",
        url: str | Sequence[str] = DEFAULT_URL,
        routing_key: str | Sequence[str] | None = None,
        serializer: str | Serializer | type[bytes] = "json",
        queue_arguments: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        retry_delays: Sequence[float] | None = None,
        **options: Any,
    ) -> AmqpConfig:
        """Normalise the constructor's input forms, then build (and so validate) a config.

        Args:
            where: the class being configured, named in error messages.
            url: one broker URL or a list of them (tried in turn).
            routing_key: one routing key, a list of them, or None.
            serializer: a serializer name, ``bytes``, or a serializer object.
            queue_arguments: extra ``x-...`` arguments of the queue declaration.
            max_retries: retries before dead-lettering; None: as many as ``retry_delays``
                (0 without them).
            retry_delays: seconds a failed message waits before each retry, or None.
            **options: the remaining fields, unchanged.

        Raises:
            ConfigurationError: any invalid option, naming it.
        """
        raw_urls = [url] if isinstance(url, str) else url
        if not isinstance(raw_urls, Sequence) or not raw_urls:
            raise ConfigurationError(  # never its repr: a URL inside would show its password
                f"{where}: url: expected an amqp:// URL or a non-empty list of them, got "
                f"{type(url).__name__}{' (empty)' if isinstance(url, Sequence) and not url else ''}"
            )
        urls = tuple(BrokerUrl.parse(item, where=where) for item in raw_urls)
        if routing_key is None:
            keys: tuple[str, ...] = ()
        elif isinstance(routing_key, str):
            keys = (routing_key,)
        elif isinstance(routing_key, Sequence) and all(isinstance(k, str) for k in routing_key):
            keys = tuple(routing_key)
        else:
            raise ConfigurationError(
                f"{where}: routing_key: expected a str or a list of str, got {shown(routing_key)}"
            )
        if queue_arguments is not None and not isinstance(queue_arguments, Mapping):
            raise ConfigurationError(
                f"{where}: queue_arguments: expected a dict, got {shown(queue_arguments)}"
            )
        delays = _retry_delays(where, retry_delays)
        if max_retries is None:
            max_retries = len(delays)
        if options.get("connection_name") is None:
            options["connection_name"] = _process_name(where)
        return cls(
            where=where,
            urls=urls,
            routing_keys=keys,
            serializer=get_serializer(serializer, where=where),
            queue_arguments=MappingProxyType(dict(queue_arguments or {})),
            max_retries=max_retries,
            retry_delays=delays,
            **options,
        )

    def __post_init__(self) -> None:
        where = self.where

        def fail(name: str, problem: str) -> ConfigurationError:
            value = getattr(self, name)
            return ConfigurationError(f"{where}: {name}: {problem}, got {shown(value)}")

        for name in ("exchange", "queue", "exchange_type"):
            if (problem := _name_problem(getattr(self, name))) is not None:
                raise fail(name, problem)
        if self.exchange_type not in _EXCHANGE_TYPES and not self.exchange_type.startswith("x-"):
            raise fail("exchange_type", f"expected one of {', '.join(_EXCHANGE_TYPES)} or x-...")
        for name, highest, kind in _INTEGERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise fail(name, "expected an integer >= 0")
            if value > highest:
                raise fail(name, f"expected at most {highest} ({kind})")
        for name in ("durable", "passive", "publisher_confirms", "reconnect"):
            if not isinstance(getattr(self, name), bool):
                raise fail(name, "expected True or False")
        for name in _DURATIONS:
            if not _seconds(getattr(self, name)):
                raise fail(name, f"expected a number of seconds > 0 and <= {MAX_SECONDS:.0f}")
        beat = self.heartbeat
        if isinstance(beat, bool) or not isinstance(beat, int | float) or not 0 <= beat < 65536:
            raise fail("heartbeat", "expected seconds between 0 (off) and 65535")
        if self.reconnect_max_delay < self.reconnect_delay:
            raise fail(
                "reconnect_max_delay", f"expected >= reconnect_delay ({self.reconnect_delay:g})"
            )
        if _name_problem(self.connection_name) is not None or not self.connection_name:
            raise fail(
                "connection_name",
                "expected a non-empty str of at most 255 bytes, or None (a generated name)",
            )
        for index, key in enumerate(self.routing_keys):
            if (problem := _name_problem(key)) is not None:
                name = "routing_key" if len(self.routing_keys) == 1 else f"routing_key[{index}]"
                raise ConfigurationError(f"{where}: {name}: {problem}, got {shown(key)}")
        dlx = self.dead_letter_exchange
        if dlx is not None and (_name_problem(dlx) is not None or not dlx):
            raise fail("dead_letter_exchange", "expected a non-empty exchange name or None")
        if dlx is not None and not self.queue:
            raise fail("dead_letter_exchange", "needs a queue to dead-letter from; set queue=")
        if self.max_retries and not self.queue:
            raise fail("max_retries", "needs a queue to retry into; set queue=")
        if self.retry_delays and self.max_retries < len(self.retry_delays):
            raise fail(
                "max_retries",
                f"expected at least as many as the {len(self.retry_delays)} retry_delays "
                f"{list(self.retry_delays)!r} (or leave it out)",
            )
        timeout = self.handler_timeout
        if timeout is not None and not _seconds(timeout):
            raise fail("handler_timeout", "expected a number of seconds > 0, or None")
        interval = self.queue_depth_interval
        off = interval is None or (type(interval) in (int, float) and interval == 0)
        if (
            interval is not None
            and not off
            and not (_seconds(interval) and interval >= MIN_QUEUE_DEPTH_INTERVAL)
        ):
            raise fail(
                "queue_depth_interval",
                f"expected seconds between {MIN_QUEUE_DEPTH_INTERVAL:g} and {MAX_SECONDS:.0f}, "
                "or None or 0 (off)",
            )
        if not all(isinstance(key, str) for key in self.queue_arguments):
            raise fail("queue_arguments", "expected str keys")
        derived = [f"{self.queue}.dlq"] if dlx else []
        derived += list(self.retry_queues().values())
        for queue in derived:  # the names we make from the queue's must fit too
            if len(queue.encode()) > 255:
                raise fail("queue", f"too long for the queue {queue!r} made from it (255 bytes)")

    def __repr__(self) -> str:
        # bounded, whatever the options hold (a queue argument may be any size)
        shown_fields = [f"urls=({', '.join(repr(url.masked) for url in self.urls)},)"]
        shown_fields += [f"{item.name}={shown(getattr(self, item.name))}"
                         for item in fields(self) if item.name != "urls"]  # fmt: skip
        return f"AmqpConfig({', '.join(shown_fields)})"

    def retry_delay(self, retries: int) -> float | None:
        """Seconds a message that failed ``retries + 1`` times waits before its next attempt
        (the last delay repeats); None without ``retry_delays``: retried at once."""
        if not self.retry_delays:
            return None
        return self.retry_delays[min(retries, len(self.retry_delays) - 1)]

    def retry_queues(self) -> dict[float, str]:
        """The wait queue of each delay a retry can take: ``<queue>.retry.<milliseconds>``."""
        used = set(self.retry_delays[: self.max_retries])  # past the list: the last one again
        return {delay: f"{self.queue}.retry.{round(delay * 1000)}" for delay in sorted(used)}

    def retry_queue_arguments(self, delay: float) -> dict[str, Any]:
        """A wait queue's declaration: its TTL, then dead-lettered back to the queue through
        the default exchange (so only this queue sees the retry). Beside a quorum queue it is
        a quorum queue too, dead-lettering at least once."""
        arguments: dict[str, Any] = {
            "x-message-ttl": round(delay * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.queue,
        }
        if self.queue_arguments.get("x-queue-type") == "quorum":
            arguments.update({"x-queue-type": "quorum", "x-overflow": "reject-publish",
                              "x-dead-letter-strategy": "at-least-once"})  # fmt: skip
        return arguments

    @property
    def heartbeat_seconds(self) -> int:
        """The heartbeat as AMQP negotiates it, in whole seconds (0 for none)."""
        return math.ceil(self.heartbeat)

    def queue_declare_arguments(self) -> dict[str, Any]:
        """Arguments of the consumer queue's declaration: dead-lettering, ``queue_arguments``."""
        arguments: dict[str, Any] = {}
        if self.dead_letter_exchange:
            arguments["x-dead-letter-exchange"] = self.dead_letter_exchange
            arguments["x-dead-letter-routing-key"] = self.queue
        arguments.update(self.queue_arguments)
        return arguments
