"""What 2018 code written for aioamqp-ext 0.1 meets here: kept where its meaning carries over
(with a DeprecationWarning naming the new spelling), refused loudly where it cannot.

Here: the constructor's 2018 calls (``loop`` 4th positional, ``exchange=None``,
``queue=None``), the 2018 datetime conversion of payloads, the 2018 methods and hooks of
``BaseAmqp`` (:class:`Compat2018`), and the helper behind the deprecated module names (PEP 562).
``docs/migration.md`` lists every 2018 name and what it does now.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .config import AmqpConfig
    from .serializers import Serializer

__all__ = [
    "ORDER_2018",
    "Compat2018",
    "accepts_2018_calls",
    "legacy_datetime",
    "moved",
    "warn_deprecated",
]

_F = TypeVar("_F", bound=Callable[..., None])

#: aioamqp-ext 0.1's positional order of the constructor: ``loop`` came 4th
ORDER_2018 = ("url", "exchange", "exchange_type", "loop", "routing_key", "queue",
              "prefetch_count", "prefetch_size", "serializer")  # fmt: skip

#: packages whose frames a warning skips: ours, and the encoders calling a serializer's hook
_INTERNAL = ("aioamqp_ext", "json", "msgpack")


def _internal(module: str) -> bool:
    """Whether a frame of ``module`` is ours, or an encoder's calling a serializer hook."""
    return any(module == top or module.startswith(f"{top}.") for top in _INTERNAL)


def warn_deprecated(message: str) -> None:
    """Emit a ``DeprecationWarning`` attributed to the first frame outside this package (and
    the encoders calling a serializer's hook): the user's line, however deep it was raised,
    which Python's default filter then shows in a ``__main__`` script."""
    frame = sys._getframe(1)
    level = 2  # the frame above this function
    while frame.f_back is not None and _internal(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def moved(module: str, name: str, names: Mapping[str, tuple[object, str]]) -> object:
    """A module attribute of aioamqp-ext 0.1, for the module's ``__getattr__`` (PEP 562).

    Args:
        module: the module's ``__name__``.
        name: the attribute asked for.
        names: each old name's value and what to use instead.

    Raises:
        AttributeError: ``name`` is not one of ``names``.
    """
    try:
        value, instead = names[name]
    except KeyError:
        raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
    warn_deprecated(f"{module}.{name} is deprecated (aioamqp-ext 0.1): use {instead}")
    return value


def legacy_datetime(value: datetime) -> float:
    """A payload's datetime as aioamqp-ext 0.1 sent it: ``time.mktime(value.timetuple())``.

    Seconds since the epoch, whole, reading the datetime's wall-clock time as this machine's
    local time (any tzinfo only sets the DST flag). Deprecated: it warns.

    Raises:
        ValueError: a datetime the platform's ``mktime`` cannot convert.
    """
    warn_deprecated(
        "a datetime in the payload was sent as seconds since the epoch in local time "
        "(time.mktime(dt.timetuple())), as aioamqp-ext 0.1 did; this implicit conversion is "
        "deprecated: convert datetimes before publishing (dt.timestamp(), dt.isoformat(), or "
        "time.mktime(dt.timetuple()) for the same number as before)"
    )
    try:
        return time.mktime(value.timetuple())
    except (OverflowError, ValueError) as exc:
        raise ValueError(
            f"datetime {value} cannot be sent as seconds since the epoch ({exc})"
        ) from None


def accepts_2018_calls(init: _F) -> _F:
    """Let ``BaseAmqp.__init__`` take aioamqp-ext 0.1's calls, or refuse them naming the fix.

    - ``loop`` 4th positional (an event loop there): the 2018 order, which works, with a
      DeprecationWarning (the loop is ignored);
    - ``None`` 4th positional with more after it: either order could be meant, a TypeError;
    - ``exchange=None``: the default exchange ``''``, and ``queue=None`` on a producer: no
      queue ``''``, both with a DeprecationWarning; a consumer's ``queue=None`` is refused.
    """
    parameters = list(inspect.signature(init).parameters.values())[1:]  # after self
    order = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        where = type(self).__name__
        if args:
            kwargs = _by_keyword(where, order, args, kwargs)
        for name in ("exchange", "queue"):
            if name in kwargs and kwargs[name] is None:
                if name == "queue" and self._side == "consumer":
                    raise ConfigurationError(f"{where}: queue: a consumer needs one, got None")
                warn_deprecated(f"{where}: {name}=None is deprecated (aioamqp-ext 0.1): use ''")
                kwargs[name] = ""
        init(self, **kwargs)

    return cast(_F, __init__)


def _by_keyword(
    where: str, order: tuple[str, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The positional ``args`` as keywords, in today's order or, loop 4th, in 2018's."""
    later = "routing_key=, queue= and the others after exchange_type"
    legacy = len(args) > 3 and isinstance(args[3], asyncio.AbstractEventLoop)
    if legacy:
        order = ORDER_2018
        after = [f"{name}=" for name in ORDER_2018[4 : len(args)]]
        fix = f"pass {', '.join(after)} by keyword" if after else "drop it"
        warn_deprecated(
            f"{where}(): the loop as 4th positional argument (aioamqp-ext 0.1's order) is "
            f"deprecated: it is ignored (the running loop is used); {fix}"
        )
    elif len(args) > 4 and args[3] is None:
        raise TypeError(
            f"{where}(): the 4th positional argument is routing_key now, and was loop in "
            f"aioamqp-ext 0.1; with None there and more after it either order could be meant: "
            f"pass {later} by keyword"
        )
    if len(args) > len(order):
        raise TypeError(
            f"{where}() takes at most {len(order)} positional arguments ({len(args)} given); "
            f"pass {later} by keyword"
        )
    bound = dict(zip(order, args, strict=False))
    for name in bound:
        if name in kwargs:
            raise TypeError(f"{where}() got multiple values for argument {name!r}")
    if legacy:
        del bound["loop"]  # ignored, as the warning said
    return {**bound, **kwargs}


#: the methods and hooks of aioamqp-ext 0.1 nothing calls now: the sides (producer,
#: consumer) that called each, and what replaces it
_GONE: Mapping[str, tuple[tuple[str, ...], str]] = {
    "on_message": (("consumer",), (
        "write process_request(self, data), or process_request(self, data, message) for the "
        "properties and the routing key; a message is acked once it returns and rejected "
        "(dead-lettered) when it raises")),
    "declare_exchange": (("consumer", "producer"), (
        "connect() declares the exchange, from exchange=, exchange_type=, durable= and passive="
    )),
    "declare_queue": (("consumer",), (
        "connect() declares the queue, from queue=, durable=, queue_arguments= and "
        "dead_letter_exchange=")),
    "bind_queue": (("consumer",), "connect() binds the queue to each of routing_key= (a list)"),
    "specify_basic_qos": (("consumer",), (
        "connect() sets QoS from prefetch_count= and prefetch_size=")),
    "serialize_data": (("producer",), (
        "pass serializer=, an object with content_type, serialize(payload) -> bytes and "
        "deserialize(body)")),
    "deserialize_data": (("consumer",), (
        "pass serializer=, an object with content_type, serialize(payload) -> bytes and "
        "deserialize(body)")),
    "_init_connection": (("consumer", "producer"), (
        "connect() declares the whole topology from the options")),
}  # fmt: skip


class Compat2018:
    """What :class:`~aioamqp_ext.BaseAmqp` keeps of aioamqp-ext 0.1's methods, and refuses.

    A subclass overriding a 2018 hook nothing calls any more (``on_message``,
    ``declare_queue``...) is a ``TypeError`` when the class is created, never silence. Calling
    a removed method raises an ``AttributeError`` naming its replacement; ``serializer``,
    ``serialize_data()`` and ``deserialize_data()`` work, and warn.
    """

    _side: ClassVar[str | None] = None
    if TYPE_CHECKING:
        config: AmqpConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, (sides, instead) in _GONE.items():
            if name in cls.__dict__ and (cls._side is None or cls._side in sides):
                raise TypeError(
                    f"{cls.__qualname__}.{name}() overrides a method of aioamqp-ext 0.1 that "
                    f"is never called any more: {instead}"
                )

    @property
    def serializer(self) -> Serializer:
        """The serializer in use, ``config.serializer`` (aioamqp-ext 0.1's name, deprecated)."""
        warn_deprecated(
            f"{type(self).__name__}.serializer is deprecated (aioamqp-ext 0.1): use "
            "config.serializer (an object whose serialize() returns bytes)"
        )
        return self.config.serializer

    @serializer.setter
    def serializer(self, value: object) -> None:
        raise AttributeError(
            f"{type(self).__name__}.serializer cannot be set: pass serializer= to the "
            "constructor ('json', 'msgpack', or an object with content_type, "
            "serialize(payload) -> bytes and deserialize(body))"
        )

    def serialize_data(self, data: Any) -> bytes:
        """``config.serializer.serialize(data)`` (aioamqp-ext 0.1's name, deprecated)."""
        warn_deprecated(
            f"{type(self).__name__}.serialize_data() is deprecated (aioamqp-ext 0.1): use "
            "config.serializer.serialize() (it returns bytes)"
        )
        return self.config.serializer.serialize(data)

    def deserialize_data(self, data: bytes) -> Any:
        """``config.serializer.deserialize(data)`` (aioamqp-ext 0.1's name, deprecated)."""
        warn_deprecated(
            f"{type(self).__name__}.deserialize_data() is deprecated (aioamqp-ext 0.1): use "
            "config.serializer.deserialize()"
        )
        return self.config.serializer.deserialize(data)

    if not TYPE_CHECKING:  # at run time only: type checkers keep reporting unknown names

        def __getattr__(self, name: str) -> Any:
            gone = _GONE.get(name)
            if gone is None:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}",
                    name=name,
                    obj=self,
                )
            raise AttributeError(
                f"{type(self).__name__}.{name}() of aioamqp-ext 0.1 is gone: {gone[1]}",
                name=name,
                obj=self,
            )
