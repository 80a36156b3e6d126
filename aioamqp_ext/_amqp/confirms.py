"""Publisher confirms, tracked by delivery tag (aioamqp 0.15 ignores ``multiple``:
https://github.com/Polyconseil/aioamqp/issues/233).

The broker numbers the messages of a channel in confirm mode 1, 2, 3 ... and acks or nacks
them, possibly many at once (``multiple=True``: every tag up to this one). A mandatory message
that matches no queue is first returned (basic.return, which carries no tag, so it is matched
by ``message_id``), then acked: the ack then resolves as :class:`UnroutableError`.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..errors import AmqpExtError, PublishNackedError, UnroutableError


def unroutable(
    message_id: str, *, exchange: str, routing_key: str, reply_code: int, reply_text: str
) -> UnroutableError:
    """The error of a mandatory message the broker returned (basic.return)."""
    return UnroutableError(
        f"message {message_id} to exchange {exchange!r} with routing key {routing_key!r} was "
        f"returned unroutable: {reply_code} {reply_text} (no queue is bound to receive it)",
        reply_code=reply_code,
        reply_text=reply_text,
        exchange=exchange,
        routing_key=routing_key,
    )


class ConfirmTracker:
    """Waiters of the unconfirmed publishes of one channel."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._next_tag = 1
        self._waiters: dict[int, asyncio.Future[None]] = {}  # ascending tags, in order
        self._mandatory: dict[int, str] = {}  # tag -> message_id, until confirmed or returned
        self._by_id: dict[str, deque[int]] = {}  # message_id -> its waiting tags, oldest first
        self._returned: dict[int, UnroutableError] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def add(self, *, mandatory_id: str | None = None) -> asyncio.Future[None]:
        """The waiter of the next publish; call it right when its frames are written."""
        tag, self._next_tag = self._next_tag, self._next_tag + 1
        waiter = self._waiters[tag] = asyncio.get_running_loop().create_future()
        if mandatory_id is not None:
            self._mandatory[tag] = mandatory_id
            self._by_id.setdefault(mandatory_id, deque()).append(tag)
        return waiter

    def returned(self, message_id: str | None, error: UnroutableError) -> bool:
        """Record a basic.return; False if it matches no waiting mandatory publish."""
        tags = self._by_id.get(message_id or "")
        if not tags:
            return False
        tag = tags[0]  # returns come in publish order, so the oldest waiting one is it
        self._forget(tag)
        self._returned[tag] = error
        return True

    def _forget(self, tag: int) -> None:
        message_id = self._mandatory.pop(tag, None)
        if message_id is not None:
            tags = self._by_id[message_id]
            tags.remove(tag)  # nearly always the first
            if not tags:
                del self._by_id[message_id]

    def settle(self, tag: int, *, multiple: bool, nacked: bool) -> None:
        """Resolve the waiter of ``tag`` and, with ``multiple``, of every tag before it."""
        tags = [tag]
        if multiple:
            tags = []
            for pending in self._waiters:
                if pending > tag:
                    break
                tags.append(pending)
        for done in tags:
            waiter = self._waiters.pop(done, None)
            self._forget(done)
            returned = self._returned.pop(done, None)
            if waiter is None or waiter.done():  # its caller gave up (publish_timeout)
                continue
            if nacked:
                waiter.set_exception(
                    PublishNackedError(
                        f"the broker at {self.where} nacked the message (tag {done})"
                    )
                )
            elif returned is not None:
                waiter.set_exception(returned)
            else:
                waiter.set_result(None)

    def fail_all(self, error: AmqpExtError) -> None:
        """Fail every waiter (the channel is gone; the broker will never confirm them)."""
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # nobody may be awaiting it any more: mark it retrieved
        self._waiters.clear()
        self._mandatory.clear()
        self._by_id.clear()
        self._returned.clear()
