"""Constructor validation: bad input fails at construction, naming the argument."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any

import pytest

from aioamqp_ext import (
    AmqpConfig,
    AmqpExtError,
    BaseAmqp,
    BaseConsumer,
    BaseProducer,
    ConfigurationError,
    JsonSerializer,
    RawSerializer,
    mask_url,
)


class Consumer(BaseConsumer):
    async def process_request(self, data: object) -> None:
        pass


def test_original_keywords_keep_their_defaults() -> None:
    """The 2018 constructor keywords must keep their meaning and defaults (the talk's API)."""
    params = inspect.signature(BaseProducer.__init__).parameters
    assert params["url"].default == "amqp://localhost:5672/"
    assert params["exchange_type"].default == "topic"
    assert params["prefetch_count"].default == 1
    assert params["prefetch_size"].default == 0
    assert params["serializer"].default == "json"
    assert params["durable"].kind is inspect.Parameter.KEYWORD_ONLY
    config = BaseProducer(exchange="x").config
    assert config.durable is True
    assert isinstance(config.serializer, JsonSerializer)


def test_unknown_serializer_is_rejected_naming_the_argument() -> None:
    """A typo in serializer= must fail at construction, not on the first message."""
    with pytest.raises(ConfigurationError, match=r"BaseProducer: serializer: unknown .*'yaml'"):
        BaseProducer(exchange="x", serializer="yaml")


def test_negative_prefetch_count_is_rejected() -> None:
    """prefetch_count < 0 is meaningless and must be refused up front."""
    with pytest.raises(ValueError, match=r"Consumer: prefetch_count: .*>= 0, got -1"):
        Consumer(exchange="x", queue="q", prefetch_count=-1)


def test_bad_url_scheme_is_rejected_with_the_password_masked() -> None:
    """A wrong scheme is a caller mistake, and its message must not leak the password."""
    with pytest.raises(ConfigurationError, match=r"url: scheme must be amqp") as info:
        BaseProducer(url="http://user:s3cret@host/", exchange="x")
    assert "s3cret" not in str(info.value)
    assert "got scheme 'http'" in str(info.value)


def test_configuration_errors_are_value_errors_under_the_root() -> None:
    """Callers may catch ValueError or the package's single root, AmqpExtError."""
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, AmqpExtError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exchange_type": "topik"}, r"exchange_type: expected one of"),
        ({"routing_key": 5}, r"routing_key: expected a str or a list of str"),
        ({"connect_timeout": 0}, r"connect_timeout: expected a number of seconds > 0"),
        ({"heartbeat": -1}, r"heartbeat: expected seconds between 0"),
        ({"max_retries": -2}, r"max_retries: expected an integer >= 0"),
        ({"queue_arguments": ["x"]}, r"queue_arguments: expected a dict"),
        ({"url": []}, r"url: expected an amqp:// URL or a non-empty list"),
        ({"serializer": object()}, r"serializer: expected a name or an object"),
        ({"reconnect": "yes"}, r"reconnect: expected True or False"),
        ({"reconnect_delay": 0}, r"reconnect_delay: expected a number of seconds > 0"),
        (
            {"reconnect_delay": 2, "reconnect_max_delay": 1},
            r"reconnect_max_delay: expected >= reconnect_delay \(2\), got 1",
        ),
        ({"connection_name": ""}, r"connection_name: expected a non-empty str"),
    ],
)
def test_invalid_options_name_the_argument(kwargs: dict[str, Any], match: str) -> None:
    """Each invalid option is reported with its own name, so the fix is obvious."""
    with pytest.raises(ConfigurationError, match=match):
        Consumer(exchange="x", queue="q", **kwargs)


def test_consumer_without_queue_is_rejected() -> None:
    """A consumer with no queue could never receive anything."""
    with pytest.raises(ConfigurationError, match=r"Consumer: queue: a consumer needs one"):
        Consumer(exchange="x")


def test_loop_argument_is_accepted_with_a_deprecation_warning() -> None:
    """Old code passing loop= must keep working, and be told it is ignored."""
    with pytest.warns(DeprecationWarning, match="loop= is ignored"):
        producer = BaseProducer(exchange="x", loop=object())
    assert producer.config.exchange == "x"


def test_password_is_masked_in_repr_and_config() -> None:
    """Reprs end up in logs and tracebacks; they must never show the password."""
    producer = BaseProducer(url="amqp://guest:hunter2@broker:5672/vh", exchange="x")
    assert "hunter2" not in repr(producer)
    assert "hunter2" not in repr(producer.config)
    assert "amqp://guest:***@broker:5672/vh" in repr(producer)
    assert mask_url("amqps://u:p%40ss@h/") == "amqps://u:***@h/"
    assert mask_url("amqp://h/") == "amqp://h/"


def test_url_list_and_routing_key_list_are_normalised() -> None:
    """url may be a cluster list and routing_key a list: one binding per key."""
    config = AmqpConfig.from_options(
        url=["amqp://a/", "amqps://b/v%2Fh"], routing_key=["k1", "k2"], serializer=bytes
    )
    assert [(u.host, u.port, u.ssl) for u in config.urls] == [("a", 5672, False), ("b", 5671, True)]
    assert config.urls[1].virtualhost == "v/h"
    assert config.routing_keys == ("k1", "k2")
    assert isinstance(config.serializer, RawSerializer)


def test_dead_letter_exchange_sets_queue_arguments() -> None:
    """The queue must be declared with the DLX arguments docs/design.md promises, plus extras."""
    config = AmqpConfig.from_options(
        queue="jobs",
        dead_letter_exchange="dlx",
        queue_arguments={"x-queue-type": "quorum"},
    )
    assert config.queue_declare_arguments() == {
        "x-dead-letter-exchange": "dlx",
        "x-dead-letter-routing-key": "jobs",
        "x-queue-type": "quorum",
    }


def test_immediate_is_refused_clearly() -> None:
    """RabbitMQ does not support immediate; silently ignoring it would mislead the caller."""
    producer = BaseProducer(exchange="x")
    with pytest.raises(ConfigurationError, match=r"immediate: RabbitMQ does not support"):
        _ = producer.publish_message("p", routing_key="k", immediate=True)


def test_connection_name_defaults_to_class_pid_and_host() -> None:
    """Operators must be able to tell which process holds a connection on the broker."""
    assert Consumer(exchange="x", queue="q").config.connection_name.startswith(
        f"Consumer pid {os.getpid()} on "
    )
    assert BaseProducer(connection_name="billing-api").config.connection_name == "billing-api"


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (BaseProducer, {"max_retries": 3}, r"BaseProducer: max_retries: consumer options"),
        (BaseProducer, {"dead_letter_exchange": "dlx", "queue": "q", "close_timeout": 1},
         r"BaseProducer: dead_letter_exchange, close_timeout: consumer options, which a "
         r"producer does not use; remove them, got dead_letter_exchange='dlx', close_timeout=1"),
        (BaseProducer, {"queue_arguments": {"x-queue-type": "quorum"}}, r"queue_arguments"),
        (Consumer, {"queue": "q", "publisher_confirms": False},
         r"Consumer: publisher_confirms: producer options, which a consumer does not use"),
    ],
)  # fmt: skip
def test_a_side_refuses_the_options_of_the_other_side(
    make: type[BaseAmqp], options: dict[str, Any], message: str
) -> None:
    """An option a side would silently ignore (a producer's max_retries) is a mistake to name."""
    with pytest.raises(ConfigurationError, match=message):
        make(**options)


def test_a_producer_warns_of_the_prefetch_options_the_2018_api_took_on_both_sides() -> None:
    """aioamqp-ext 0.1 passed prefetch_count to producers too: old code keeps working, warned."""
    with pytest.warns(DeprecationWarning, match=r"prefetch_count is ignored by a producer"):
        producer = BaseProducer(exchange="x", prefetch_count=10)
    assert producer.config.exchange == "x"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BaseProducer(exchange="x", prefetch_count=1, max_retries=0)  # the defaults: not given


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_delays": []}, r"Consumer: retry_delays: expected a non-empty list of seconds "
                               r"between 0.001 and 4294967, got \[\]"),
        ({"retry_delays": [1, -5]}, r"retry_delays: .*, got \[1, -5\]"),
        ({"retry_delays": [0]}, r"retry_delays: .*, got \[0\]"),
        ({"retry_delays": ["10"]}, r"retry_delays: .*, got \['10'\]"),
        ({"retry_delays": "10"}, r"retry_delays: .*, got '10'"),
        ({"retry_delays": [True]}, r"retry_delays: .*, got \[True\]"),
        ({"retry_delays": [10**400]}, r"retry_delays: expected a non-empty list"),
        ({"retry_delays": (1, 10, 60), "max_retries": 2},
         r"max_retries: expected at least as many as the 3 retry_delays \[1.0, 10.0, 60.0\] "
         r"\(or leave it out\), got 2"),
        ({"handler_timeout": 0},
         r"handler_timeout: expected a number of seconds > 0, or None, got 0"),
        ({"handler_timeout": -1.5}, r"handler_timeout: .*, got -1.5"),
        ({"handler_timeout": "5"}, r"handler_timeout: .*, got '5'"),
    ],
)  # fmt: skip
def test_bad_retry_and_timeout_options_are_named_at_construction(
    options: dict[str, Any], message: str
) -> None:
    """A typo in a retry policy must fail the worker's start, naming the keyword and value."""
    with pytest.raises(ConfigurationError, match=message):
        Consumer(queue="q", **options)


def test_retry_delays_give_max_retries_and_their_wait_queues() -> None:
    """max_retries defaults to one per delay; the last delay repeats past them; one wait
    queue per distinct delay, named by its milliseconds."""
    config = Consumer(queue="orders", retry_delays=(1, 10, 60)).config
    assert config.max_retries == 3
    assert config.retry_queues() == {1.0: "orders.retry.1000", 10.0: "orders.retry.10000",
                                     60.0: "orders.retry.60000"}  # fmt: skip
    longer = Consumer(queue="orders", retry_delays=(0.5, 2), max_retries=5).config
    assert [longer.retry_delay(n) for n in range(5)] == [0.5, 2.0, 2.0, 2.0, 2.0]
    assert longer.retry_queue_arguments(2.0) == {
        "x-message-ttl": 2000, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "orders",
    }  # fmt: skip
    assert Consumer(queue="orders", max_retries=2).config.retry_queues() == {}


def test_a_handler_with_a_second_parameter_under_another_name_is_refused() -> None:
    """The second parameter receives the Message only under its name: a typo is an error,
    not a silent one-argument handler."""

    class Typo(BaseConsumer):
        async def process_request(self, data: Any, msg: Any) -> None:
            pass

    class TwoForms(BaseConsumer):
        async def process_request(self, data: Any, message: Any) -> None:
            pass

    class Optional(BaseConsumer):
        async def process_request(self, data: Any, extra: Any = None) -> None:
            pass

    with pytest.raises(ConfigurationError, match=r"Typo: process_request: its parameters after "
                       r"data must be one named 'message' .*, got 'msg'"):  # fmt: skip
        Typo(queue="q")
    assert (TwoForms._with_message, Optional._with_message, Consumer._with_message) == (
        True, False, False)  # fmt: skip
    assert Optional(queue="q").config.queue == "q"
