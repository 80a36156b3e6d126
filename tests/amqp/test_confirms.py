"""Confirm tracking by delivery tag: the part aioamqp 0.15 gets wrong
(https://github.com/Polyconseil/aioamqp/issues/233)."""

from __future__ import annotations

import pytest

from aioamqp_ext import AmqpConnectionError, PublishNackedError, UnroutableError
from aioamqp_ext._amqp.confirms import ConfirmTracker


def unroutable() -> UnroutableError:
    return UnroutableError(
        "returned", reply_code=312, reply_text="NO_ROUTE", exchange="x", routing_key="k"
    )


async def test_a_multiple_ack_settles_every_tag_up_to_it() -> None:
    """One batch ack from the broker must release every publish it covers, and no other."""
    tracker = ConfirmTracker("amqp://h/")
    waiters = [tracker.add() for _ in range(5)]
    tracker.settle(3, multiple=True, nacked=False)
    assert [w.done() for w in waiters] == [True, True, True, False, False]
    tracker.settle(5, multiple=False, nacked=False)
    assert [w.done() for w in waiters] == [True, True, True, False, True]
    tracker.settle(4, multiple=True, nacked=True)
    with pytest.raises(PublishNackedError, match="tag 4"):
        await waiters[3]
    assert len(tracker) == 0


async def test_a_return_then_its_ack_raises_unroutable_for_that_message_only() -> None:
    """basic.return has no tag: it must be matched by message id to the right publish."""
    tracker = ConfirmTracker("amqp://h/")
    first = tracker.add(mandatory_id="m1")
    second = tracker.add(mandatory_id="m2")
    assert tracker.returned("m2", unroutable())
    assert not tracker.returned("unknown", unroutable())
    tracker.settle(2, multiple=True, nacked=False)
    assert first.result() is None
    with pytest.raises(UnroutableError):
        await second


async def test_losing_the_channel_fails_every_waiter_even_abandoned_ones() -> None:
    """On outage every unconfirmed publish must fail; none may hang or warn unretrieved."""
    tracker = ConfirmTracker("amqp://h/")
    kept = tracker.add()
    abandoned = tracker.add()
    tracker.fail_all(AmqpConnectionError("lost"))
    with pytest.raises(AmqpConnectionError, match="lost"):
        await kept
    assert abandoned.done()
    tracker.settle(2, multiple=True, nacked=False)  # a late ack for a failed tag is ignored
    assert len(tracker) == 0


async def test_returns_match_publishes_sharing_a_message_id_in_order() -> None:
    """Callers may reuse a message_id; each return must still fail exactly one publish."""
    tracker = ConfirmTracker("amqp://h/")
    waiters = [tracker.add(mandatory_id="same") for _ in range(3)]
    assert tracker.returned("same", unroutable())
    tracker.settle(2, multiple=True, nacked=False)
    assert tracker.returned("same", unroutable())
    tracker.settle(3, multiple=False, nacked=False)
    with pytest.raises(UnroutableError):
        await waiters[0]
    assert waiters[1].result() is None
    with pytest.raises(UnroutableError):
        await waiters[2]
    assert len(tracker) == 0
