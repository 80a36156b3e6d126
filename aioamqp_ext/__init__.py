"""RabbitMQ producer and consumer base classes over aioamqp, with at-least-once delivery."""

from _aiohttp_booster.legacy import warn_legacy_distributions
from _aiohttp_booster.version import __version__

from .base import BaseAmqp
from .config import AmqpConfig, BrokerUrl, mask_url
from .consumer import BaseConsumer
from .errors import (
    AmqpConnectionError,
    AmqpExtError,
    AmqpTimeoutError,
    ClosedError,
    ConfigurationError,
    DeserializationError,
    HandlerTimeoutError,
    PublishError,
    PublishNackedError,
    PublishTimeoutError,
    SerializationError,
    TopologyError,
    UnroutableError,
)
from .message import Message
from .producer import BaseProducer
from .serializers import (
    JsonSerializer,
    MsgpackSerializer,
    RawSerializer,
    Serializer,
    TextSerializer,
)

# the 2018 distributions own these packages too: say how to repair such an installation
warn_legacy_distributions()

__all__ = [
    "AmqpConfig",
    "AmqpConnectionError",
    "AmqpExtError",
    "AmqpTimeoutError",
    "BaseAmqp",
    "BaseConsumer",
    "BaseProducer",
    "BrokerUrl",
    "ClosedError",
    "ConfigurationError",
    "DeserializationError",
    "HandlerTimeoutError",
    "JsonSerializer",
    "Message",
    "MsgpackSerializer",
    "PublishError",
    "PublishNackedError",
    "PublishTimeoutError",
    "RawSerializer",
    "SerializationError",
    "Serializer",
    "TextSerializer",
    "TopologyError",
    "UnroutableError",
    "__version__",
    "mask_url",
]
