"""RabbitMQ producer and consumer base classes over aioamqp, with at-least-once delivery."""

from ._version import __version__

__all__ = ["__version__"]
