"""Programs written for aioamqp-ext 0.1 (2018) on this project: every public name of 0.1.5
works as before (warning when its spelling is old) or fails naming what to use instead, and
the 2018 README's samples run unchanged against the local broker.

docs/migration.md has the table of those names; the last tests keep it complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import re
import signal
import subprocess
import textwrap
import time
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aioamqp_ext import (
    BaseAmqp,
    BaseConsumer,
    BaseProducer,
    ConfigurationError,
    DeserializationError,
    JsonSerializer,
    MsgpackSerializer,
    SerializationError,
)
from aioamqp_ext.testing import RecordingProducer
from tests.amqp.conftest import Broker
from tests.compat import SAMPLES_PYTHON, samples_env
from tests.conftest import AmqpNames

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "samples_2018" / "aioamqp_ext"
MIGRATION = ROOT / "docs" / "migration.md"
URL = "amqp://127.0.0.1:1/"  # never connected to: these tests stop before the network
THIS_FILE = str(Path(__file__))


class Consumer(BaseConsumer):
    async def process_request(self, data: Any) -> None:
        pass


@contextlib.contextmanager
def no_warning() -> Iterator[None]:
    """Fail on any warning inside (today's spellings must stay silent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@contextlib.contextmanager
def deprecated(match: str) -> Iterator[None]:
    """Expect one DeprecationWarning matching ``match``, raised on a line of this file: the
    warning points at the caller's code, where Python's default filter shows it."""
    with pytest.deprecated_call(match=match) as record:
        yield
    assert [w.filename for w in record] == [THIS_FILE]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop to pass where 2018 code passed one (never run)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# --- modules and their names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "value", "instead"),
    [
        ("aioamqp_ext.base_consumer", "BaseConsumer", BaseConsumer, "aioamqp_ext.BaseConsumer"),
        ("aioamqp_ext.base_producer", "BaseProducer", BaseProducer, "aioamqp_ext.BaseProducer"),
        ("aioamqp_ext.serializer", "JSON", "json", "'json'"),
        ("aioamqp_ext.serializer", "MSGPACK", "msgpack", "'msgpack'"),
        ("aioamqp_ext.serializer", "SerializeException", SerializationError,
         "aioamqp_ext.SerializationError"),
        ("aioamqp_ext.serializer", "DeserializeException", DeserializationError,
         "aioamqp_ext.DeserializationError"),
        ("aioamqp_ext.base", "DEFAULT_RABBIT_URL", "amqp://localhost:5672/",
         "aioamqp_ext.config.DEFAULT_URL"),
        ("aioamqp_ext.base", "DEFAULT_EXCHANGE_TYPE", "topic", "the default of exchange_type="),
        ("aioamqp_ext.base", "DEFAULT_PREFETCH_COUNT", 1, "the default of prefetch_count="),
        ("aioamqp_ext.base", "DEFAULT_PREFETCH_SIZE", 0, "the default of prefetch_size="),
    ],
)  # fmt: skip
def test_old_names_work_and_warn_naming_the_new_spelling(
    module: str, name: str, value: object, instead: str
) -> None:
    """A 2018 import keeps working, and says what to write instead."""
    imported = importlib.import_module(module)
    with deprecated(
        rf"{module}\.{name} is deprecated \(aioamqp-ext 0\.1\): use .*{re.escape(instead)}"
    ):
        assert getattr(imported, name) == value


def test_from_import_warns_at_the_importing_line() -> None:
    """``from aioamqp_ext.serializer import JSON`` is what 2018 code says: PEP 562 warns."""
    with deprecated("aioamqp_ext.serializer.JSON is deprecated"):
        from aioamqp_ext.serializer import JSON
    assert BaseProducer(URL, serializer=JSON).config.serializer.content_type == "application/json"


def test_importing_the_old_modules_alone_does_not_warn() -> None:
    """Only a name warns: tools that walk the package (docs, wheels' checks) stay quiet."""
    code = "import aioamqp_ext.serializer, aioamqp_ext.base_consumer, aioamqp_ext.base_producer"
    result = subprocess.run(
        [SAMPLES_PYTHON, "-W", "error", "-c", code],
        capture_output=True, text=True, check=False, env=samples_env(),
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")


def test_star_import_of_the_old_serializer_module_gives_its_2018_names() -> None:
    namespace: dict[str, Any] = {}
    with pytest.deprecated_call():
        exec("from aioamqp_ext.serializer import *", namespace)  # noqa: S102
    assert {name for name in namespace if not name.startswith("__")} == {
        "JSON", "MSGPACK", "get_serializer"
    }  # fmt: skip


def test_unknown_names_of_the_old_modules_are_plain_attribute_errors() -> None:
    import aioamqp_ext.base
    import aioamqp_ext.serializer

    for module in (aioamqp_ext.serializer, aioamqp_ext.base):
        with no_warning(), pytest.raises(AttributeError, match="has no attribute 'nope'"):
            _ = module.nope


# --- the 2018 serializer module, as it behaved -------------------------------------------------


def legacy(name: str) -> Any:
    """A name of the deprecated ``aioamqp_ext.serializer``, its warning checked."""
    with pytest.deprecated_call(match=rf"aioamqp_ext\.serializer\.{name} is deprecated"):
        return getattr(importlib.import_module("aioamqp_ext.serializer"), name)


def test_2018_json_serializer_works_as_in_2018() -> None:
    """Static methods, text out, datetimes converted, its own exception names caught."""
    serializer = legacy("get_serializer")(legacy("JSON"))
    assert serializer is legacy("JsonSerializer")
    at = datetime(2018, 5, 1, 12, 30, 15, 999)
    assert serializer.serialize({"at": at, "n": "é"}) == json.dumps(
        {"at": time.mktime(at.timetuple()), "n": "é"}
    )
    assert serializer.deserialize('{"a": 1}') == serializer.deserialize(b'{"a": 1}') == {"a": 1}
    with pytest.raises(legacy("SerializeException")):
        serializer.serialize(object())
    with pytest.raises(legacy("DeserializeException")):
        serializer.deserialize("{")
    with pytest.raises(LookupError, match=r"^Unknown serializer: yaml$"):
        legacy("get_serializer")("yaml")


def test_2018_msgpack_serializer_writes_what_2018_wrote() -> None:
    """msgpack-python of 2018 wrote strings as raw, without the bin type, and read them back
    as str; datetimes became seconds."""
    serializer = legacy("get_serializer")(legacy("MSGPACK"))
    assert serializer is legacy("MsgPackSerializer")
    assert serializer.serialize("é") == b"\xa2\xc3\xa9"
    at = datetime(2018, 5, 1, 12, 30)
    body = serializer.serialize({"at": at})
    assert serializer.deserialize(body) == {"at": time.mktime(at.timetuple())}
    with pytest.raises(SerializationError):
        serializer.serialize(object())
    with pytest.raises(DeserializationError):
        serializer.deserialize(b"\xc1")


def test_2018_base_serializer_is_the_abstract_base_with_the_converter() -> None:
    base = legacy("BaseSerializer")
    at = datetime(2018, 5, 1, 12, 30)
    assert base.datetime_converter(at) == time.mktime(at.timetuple())
    assert base.datetime_converter("as is") == "as is"
    with pytest.raises(TypeError, match="abstract"):
        base()
    assert issubclass(legacy("JsonSerializer"), base)


# --- datetimes in payloads -------------------------------------------------------------------


@pytest.mark.parametrize("serializer", [JsonSerializer(), MsgpackSerializer()])
@pytest.mark.parametrize(
    "at",
    [
        datetime(2018, 5, 1, 12, 30, 15, 500_000),
        datetime(2018, 1, 1, tzinfo=UTC),
        datetime(2018, 7, 1, 23, 59, tzinfo=timezone(timedelta(hours=3))),
    ],
    ids=["naive", "utc", "plus-3"],
)
def test_datetimes_in_payloads_are_sent_as_2018_sent_them_with_a_warning(
    serializer: Any, at: datetime
) -> None:
    """A 2018 program publishing a datetime keeps working, its consumers reading the same
    number as before (the 2018 converter's, with its local-time reading); the warning says
    the implicit conversion is deprecated and how to write it."""
    with deprecated(r"datetime in the payload .* deprecated: convert datetimes before"):
        body = serializer.serialize({"at": at, "id": 7})
    assert serializer.deserialize(body) == {"at": time.mktime(at.timetuple()), "id": 7}
    old = legacy("get_serializer")("json").serialize({"at": at, "id": 7})
    assert json.loads(old) == serializer.deserialize(body)


@pytest.mark.parametrize("serializer", [JsonSerializer(), MsgpackSerializer()])
def test_other_objects_are_still_refused(serializer: Any) -> None:
    """Only datetimes had a 2018 conversion; a date or any object stays an error."""
    for payload in (object(), {"day": datetime(2018, 5, 1).date()}):
        with no_warning(), pytest.raises(SerializationError, match=r"not .*serializ"):
            serializer.serialize(payload)


# --- the classes -----------------------------------------------------------------------------


def test_delivery_mode_names_and_default_properties_are_kept() -> None:
    """Their meaning carried over: kept as today's API, without a warning."""
    with no_warning():
        assert (BaseProducer.PERSISTENT, BaseProducer.NON_PERSISTENT) == (2, 1)
        producer = BaseProducer(URL, exchange="x")
        assert producer.DEFAULT_PROPERTIES == {"delivery_mode": BaseProducer.PERSISTENT}
    with pytest.raises(TypeError):  # read-only: changing it for every producer is refused
        BaseProducer.DEFAULT_PROPERTIES["priority"] = 5  # type: ignore[index]


async def test_default_properties_of_a_subclass_are_used_as_in_2018() -> None:
    """A 2018 subclass overriding DEFAULT_PROPERTIES publishes with them (the production
    path up to the network, recorded)."""

    class TransientProducer(BaseProducer):
        DEFAULT_PROPERTIES: ClassVar[Mapping[str, Any]] = {
            "delivery_mode": BaseProducer.NON_PERSISTENT,
            "priority": 3,
        }

    class Recording(RecordingProducer, TransientProducer):
        pass

    producer = Recording(exchange="x")
    await producer.publish_message("a", routing_key="k")
    await producer.publish_message("b", routing_key="k", properties={"priority": 9})
    await producer.publish_message("c", routing_key="k", properties=BaseProducer.DEFAULT_PROPERTIES)
    first, second, third = (message.properties for message in producer.published)
    assert (first["delivery_mode"], first["priority"]) == (1, 3)
    assert (second["delivery_mode"], second["priority"]) == (1, 9)
    assert third["delivery_mode"] == 2
    await producer.close()


@pytest.mark.parametrize(
    ("base", "hook", "instead"),
    [
        (BaseConsumer, "on_message", r"process_request\(self, data, message\)"),
        (BaseConsumer, "declare_queue", "queue_arguments="),
        (BaseConsumer, "bind_queue", "routing_key="),
        (BaseConsumer, "specify_basic_qos", "prefetch_count="),
        (BaseConsumer, "deserialize_data", "serializer="),
        (BaseConsumer, "declare_exchange", "exchange_type="),
        (BaseConsumer, "_init_connection", r"connect\(\)"),
        (BaseProducer, "serialize_data", "serializer="),
        (BaseProducer, "declare_exchange", "exchange_type="),
    ],
)
def test_overriding_a_2018_hook_is_a_type_error_when_the_class_is_created(
    base: type[BaseAmqp], hook: str, instead: str
) -> None:
    """Nothing calls these any more: an override would be silently dead code."""

    async def override(self: Any, *args: Any) -> None:
        pass

    refused = rf"^Old\.{hook}\(\) overrides a method of aioamqp-ext 0\.1 that is never called "
    with pytest.raises(TypeError, match=rf"{refused}any more: .*{instead}"):
        type("Old", (base,), {hook: override, "process_request": override})


def test_the_2018_on_message_override_fails_at_class_creation() -> None:
    """A 2018 consumer overriding on_message, written as in 2018."""
    with pytest.raises(TypeError, match=r"Consumer\.on_message\(\) overrides"):

        class Consumer(BaseConsumer):
            async def on_message(self, channel, body, envelope, properties):
                await channel.basic_client_ack(delivery_tag=envelope.delivery_tag)

            async def process_request(self, data: Any) -> None:
                pass


def test_names_that_were_never_hooks_on_that_side_stay_free() -> None:
    """A 2018 producer never had on_message: a method of that name is the user's own."""

    class Producer(BaseProducer):
        def on_message(self) -> str:
            return "mine"

    assert Producer(URL, exchange="x").on_message() == "mine"


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("declare_exchange", "connect() declares the exchange"),
        ("declare_queue", "connect() declares the queue"),
        ("bind_queue", "connect() binds the queue"),
        ("specify_basic_qos", "connect() sets QoS"),
        ("on_message", "write process_request(self, data)"),
    ],
)
def test_calling_a_removed_method_names_its_replacement(name: str, instead: str) -> None:
    consumer = Consumer(URL, exchange="x", queue="q")
    gone = rf"^Consumer\.{name}\(\) of aioamqp-ext 0\.1 is gone: {re.escape(instead)}"
    with pytest.raises(AttributeError, match=gone):
        getattr(consumer, name)
    assert not hasattr(consumer, name)
    with pytest.raises(AttributeError, match=r"^'Consumer' object has no attribute 'nope'$"):
        _ = consumer.nope  # type: ignore[attr-defined]


def test_serializer_and_its_two_methods_work_and_warn() -> None:
    producer = BaseProducer(URL, exchange="x")
    with deprecated(r"BaseProducer\.serializer is deprecated .*use config\.serializer"):
        assert producer.serializer is producer.config.serializer
    with deprecated(r"serialize_data\(\) is deprecated .*config\.serializer\.serialize\(\)"):
        body = producer.serialize_data({"a": 1})
    with deprecated(r"deserialize_data\(\) is deprecated"):
        assert producer.deserialize_data(body) == {"a": 1}
    with pytest.raises(AttributeError, match="cannot be set: pass serializer= to the constructor"):
        producer.serializer = object()


# --- the constructor -------------------------------------------------------------------------


def test_none_exchange_and_queue_mean_none_as_in_2018() -> None:
    """2018's defaults were None: now the default exchange '' and no queue '', with a warning."""
    with deprecated(r"BaseProducer: exchange=None is deprecated \(aioamqp-ext 0\.1\): use ''"):
        assert BaseProducer(URL, exchange=None).config.exchange == ""  # type: ignore[arg-type]
    with deprecated("exchange=None is deprecated"):
        assert BaseProducer(URL, None).config.exchange == ""  # type: ignore[arg-type]
    with deprecated("queue=None is deprecated"):
        assert BaseProducer(URL, exchange="x", queue=None).config.queue == ""  # type: ignore[arg-type]
    with deprecated("exchange=None is deprecated"):
        consumer = Consumer(URL, exchange=None, queue="q")
    assert consumer.config.exchange == ""


def test_a_consumer_without_a_queue_is_refused_naming_none() -> None:
    refused = r"^Consumer: queue: a consumer needs one, got None$"
    with pytest.raises(ConfigurationError, match=refused):
        Consumer(URL, exchange="x", queue=None)


def test_the_2018_positional_order_works_and_warns(loop: asyncio.AbstractEventLoop) -> None:
    """2018: (url, exchange, exchange_type, loop, routing_key, queue, prefetch_count,
    prefetch_size, serializer). With the loop 4th, the rest binds as it did then."""
    with deprecated(
        r"Consumer\(\): the loop as 4th positional argument \(aioamqp-ext 0\.1's order\) is "
        r"deprecated: it is ignored \(the running loop is used\); pass routing_key=, queue=, "
        r"prefetch_count=, prefetch_size=, serializer= by keyword"
    ):
        consumer = Consumer(URL, "x", "direct", loop, ["a", "b"], "q", 5, 0, "msgpack")
    cfg = consumer.config
    assert (cfg.exchange, cfg.exchange_type, cfg.routing_keys, cfg.queue) == (
        "x", "direct", ("a", "b"), "q"
    )  # fmt: skip
    assert (cfg.prefetch_count, cfg.serializer.content_type) == (5, "application/msgpack")
    with deprecated("loop as 4th positional argument .*; drop it"):
        producer = BaseProducer(URL, "x", "topic", loop)  # type: ignore[arg-type]
    assert producer.config.routing_keys == ()


def test_none_in_the_loop_place_with_more_after_it_is_ambiguous() -> None:
    """(…, None, 'k') was loop=None, routing_key='k' in 2018 and is routing_key=None,
    queue='k' now: refused rather than bound either way silently."""
    ambiguous = (
        r"BaseProducer\(\): the 4th positional argument is routing_key now, and was loop in "
        r"aioamqp-ext 0\.1; .*pass routing_key=, queue= and the others after exchange_type by "
        r"keyword"
    )
    with pytest.raises(TypeError, match=ambiguous):
        BaseProducer(URL, "x", "topic", None, "k")
    with no_warning():  # alone, None means the same in either order
        assert BaseProducer(URL, "x", "topic", None).config.routing_keys == ()


def test_todays_positional_order_is_unchanged() -> None:
    with no_warning():
        consumer = Consumer(URL, "x", "topic", "k", "q", 3, 0, "json")
    assert (consumer.config.routing_keys, consumer.config.queue) == (("k",), "q")
    assert consumer.config.prefetch_count == 3


def test_positional_mistakes_are_type_errors(loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(TypeError, match="got multiple values for argument 'queue'"):
        Consumer(URL, "x", "topic", "k", "q", queue="q")
    twice = "got multiple values for argument 'queue'"
    with pytest.raises(TypeError, match=twice), pytest.deprecated_call():  # 2018's order: warned
        Consumer(URL, "x", "topic", loop, "k", "q", queue="q")
    with pytest.raises(TypeError, match=r"takes at most 9 positional arguments \(10 given\)"):
        BaseProducer(URL, "x", "topic", "k", "", 1, 0, "json", None, True)  # type: ignore[call-arg]


def test_constructor_warnings_point_at_the_users_line(loop: asyncio.AbstractEventLoop) -> None:
    """Through a subclass's own __init__ too: the first line outside the package."""

    class Worker(Consumer):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)

    with deprecated("loop= is ignored"):
        Worker(url=URL, queue="q", loop=loop)
    with deprecated("prefetch_count is ignored by a producer"):
        BaseProducer(URL, exchange="x", prefetch_count=5)


# --- a 2018 program against the broker -------------------------------------------------------


async def test_a_2018_program_publishing_a_datetime_keeps_working(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker
) -> None:
    await broker.declare(exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="k")
    at = datetime(2018, 5, 1, 12, 30)
    producer = BaseProducer(url=amqp_url, exchange=amqp_names.exchange)
    try:
        with deprecated("datetime in the payload"):
            await producer.publish_message(payload={"at": at}, routing_key="k")
    finally:
        await producer.close()
    message = await broker.get(amqp_names.queue)
    assert message is not None
    assert json.loads(message.body) == {"at": time.mktime(at.timetuple())}


def sample(name: str, url: str, names: AmqpNames) -> str:
    """A 2018 sample with only the broker URL, exchange and queue names replaced."""
    text = (SAMPLES / f"{name}.py.txt").read_text(encoding="utf-8")
    for old, new in [
        ("'amqp://localhost:5672/'", repr(url)),
        ("'my_exchange'", repr(names.exchange)),
        ("'my_queue'", repr(names.queue)),
    ]:
        assert text.count(old) <= 1
        text = text.replace(old, new)
    return text


def script_env() -> dict[str, str]:
    return samples_env()  # this tree's packages, or another interpreter's installed copy


async def until_idle(pid: int, timeout: float = 10.0) -> None:
    """Wait until the process's main thread sleeps in epoll, its event loop idle, where a
    user's Ctrl-C finds it: the SIGINT then interrupts the wait (EINTR) and KeyboardInterrupt
    is raised there, never inside a handler still finishing. Where /proc does not say which
    kernel function a process sleeps in (not Linux, or hidden), wait a second instead."""
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            where = await asyncio.to_thread(wchan.read_text)
        except OSError:
            break
        if "epoll" in where or "ep_poll" in where:
            return
        if where in ("", "0"):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(1)


def _default_sigint() -> None:
    """SIGINT's default disposition in the child, over which Python installs its
    KeyboardInterrupt handler (a test run in a shell's background has SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Runs the script sys.argv[1] as __main__ with ``asyncio`` in its globals: the one name the
# 2018 consumer sample uses without importing it. Not a line of the sample is changed.
RUN_WITH_ASYNCIO = (
    "import asyncio, runpy, sys; "
    "runpy.run_path(sys.argv[1], init_globals={'asyncio': asyncio}, run_name='__main__')"
)


def test_the_2018_consumer_sample_never_imported_asyncio() -> None:
    """Why the consumer sample runs through RUN_WITH_ASYNCIO: as printed, it cannot run."""
    text = (SAMPLES / "consumer.py.txt").read_text(encoding="utf-8")
    assert "asyncio.get_event_loop()" in text
    assert "import asyncio" not in text


async def test_the_2018_producer_sample_runs_unchanged(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, tmp_path: Path
) -> None:
    """No event loop, publish_message() and close() never awaited: the message is confirmed
    when the script ends, and nothing is printed (no warning of any kind)."""
    await broker.declare(exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="bar")
    script = tmp_path / "producer.py"
    script.write_text(sample("producer", amqp_url, amqp_names), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        SAMPLES_PYTHON, "-W", "error", str(script), env=script_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert (proc.returncode, out, err.decode()) == (0, b"", "")
    message = await broker.get(amqp_names.queue)
    assert message is not None
    assert (message.body, message.properties.delivery_mode) == (b'"foo"', 2)
    assert await broker.get(amqp_names.queue) is None


async def test_the_2018_consumer_sample_consumes_until_ctrl_c_and_exits_cleanly(
    amqp_url: str, amqp_names: AmqpNames, broker: Broker, tmp_path: Path
) -> None:
    """The message published before is printed and acked; one SIGINT (Ctrl-C) then ends it
    through the sample's own ``except KeyboardInterrupt:
    loop.run_until_complete(consumer.close())``: exit status 0, no traceback, no warning of
    ours."""
    await broker.declare(
        exchange=amqp_names.exchange, queue=amqp_names.queue, routing_key="foo.bar"
    )
    # as a 2018 producer sent it: JSON text, no content type
    await broker.channel.publish(b'{"hello": "2018"}', amqp_names.exchange, "foo.bar")
    script = tmp_path / "consumer.py"
    script.write_text(sample("consumer", amqp_url, amqp_names), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        SAMPLES_PYTHON, "-u", "-c", RUN_WITH_ASYNCIO, str(script), env=script_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    woken = False
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert line == b"{'hello': '2018'}\n"
        await until_idle(proc.pid)  # handled and acked: the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            # A SIGINT landing just before the loop blocks in epoll is seen only when the
            # loop next wakes (the sample sets no wake-up fd): a message wakes it.
            await broker.channel.publish(b'"wake up"', amqp_names.exchange, "foo.bar")
            woken = True
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:  # never leave it running, whatever failed
            proc.kill()
            await proc.wait()
    text = err.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    # Python 3.12+ warns about get_event_loop() in the sample itself; nothing else may
    assert [line for line in text.splitlines() if "Warning" in line] == [
        line for line in text.splitlines() if "There is no current event loop" in line
    ]
    left = []  # the message handled was acked: not back in the queue
    while (message := await broker.get(amqp_names.queue)) is not None:
        left.append(message.body)
    assert left in ([], [b'"wake up"'] if woken else [])


# --- the table of docs/migration.md ----------------------------------------------------------

#: every public name of aioamqp-ext 0.1.5, as the migration guide's table names it
NAMES_2018 = [
    "aioamqp_ext.BaseAmqp", "aioamqp_ext.BaseProducer", "aioamqp_ext.BaseConsumer",
    "aioamqp_ext.base", "aioamqp_ext.base.BaseAmqp", "aioamqp_ext.base.DEFAULT_RABBIT_URL",
    "aioamqp_ext.base.DEFAULT_EXCHANGE_TYPE", "aioamqp_ext.base.DEFAULT_PREFETCH_COUNT",
    "aioamqp_ext.base.DEFAULT_PREFETCH_SIZE", "aioamqp_ext.base_consumer",
    "aioamqp_ext.base_consumer.BaseConsumer", "aioamqp_ext.base_producer",
    "aioamqp_ext.base_producer.BaseProducer", "aioamqp_ext.serializer",
    "aioamqp_ext.serializer.JSON", "aioamqp_ext.serializer.MSGPACK",
    "aioamqp_ext.serializer.get_serializer", "aioamqp_ext.serializer.BaseSerializer",
    "aioamqp_ext.serializer.JsonSerializer", "aioamqp_ext.serializer.MsgPackSerializer",
    "aioamqp_ext.serializer.SerializeException", "aioamqp_ext.serializer.DeserializeException",
    "BaseSerializer.datetime_converter", "BaseAmqp(url=...)", "BaseAmqp(exchange=...)",
    "BaseAmqp(exchange_type=...)", "BaseAmqp(loop=...)", "BaseAmqp(routing_key=...)",
    "BaseAmqp(queue=...)", "BaseAmqp(prefetch_count=...)", "BaseAmqp(prefetch_size=...)",
    "BaseAmqp(serializer=...)", "BaseAmqp.connect()", "BaseAmqp.declare_exchange()",
    "BaseAmqp.declare_queue()", "BaseAmqp.bind_queue()", "BaseAmqp.specify_basic_qos()",
    "BaseAmqp.close()", "BaseAmqp.is_connected", "BaseAmqp.serializer",
    "BaseAmqp.serialize_data()", "BaseAmqp.deserialize_data()", "BaseConsumer.on_message()",
    "BaseConsumer.process_request()", "BaseConsumer.consume()", "BaseProducer.PERSISTENT",
    "BaseProducer.NON_PERSISTENT", "BaseProducer.DEFAULT_PROPERTIES",
    "BaseProducer.publish_message()",
]  # fmt: skip


def test_the_migration_guide_has_every_2018_name_in_its_table() -> None:
    text = MIGRATION.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE)
    assert sorted(rows) == sorted(NAMES_2018)


def test_the_migration_guides_code_is_python() -> None:
    """Its before/after blocks are fragments (names like URL are the reader's), but Python."""
    text = MIGRATION.read_text(encoding="utf-8")
    section = text.split("## aioamqp_ext", 1)[1].split("<!-- monitoring section -->", 1)[0]
    blocks = re.findall(r"^ *```python\n(.*?)^ *```", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 7
    for block in blocks:
        source = textwrap.dedent(block)
        compile(f"async def _():\n{textwrap.indent(source, '    ')}", "migration.md", "exec")
