"""Fixtures of the compatibility tests: the AMQP tests' raw broker connection, shared."""

from tests.amqp.conftest import broker

__all__ = ["broker"]  # a fixture: pytest finds it in this conftest's namespace
