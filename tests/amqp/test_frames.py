"""The frames we encode by hand are byte for byte the ones pamqp encodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pamqp.body
import pamqp.commands
import pamqp.frame
import pamqp.header
import pytest

from aioamqp_ext._amqp.frames import Outbox


def pamqp_frames(channel: int, body: bytes, properties: dict[str, Any], chunk: int) -> bytes:
    header = pamqp.header.ContentHeader(
        body_size=len(body), properties=pamqp.commands.Basic.Properties(**properties)
    )
    frames = [pamqp.frame.marshal(header, channel)]
    frames += [
        pamqp.frame.marshal(pamqp.body.ContentBody(body[i : i + chunk]), channel)
        for i in range(0, len(body), chunk)
    ]
    return b"".join(frames)


PROPERTIES = [
    {},
    {"content_type": "application/json", "delivery_mode": 2, "message_id": "a" * 32,
     "timestamp": datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)},
    {"content_type": "application/json", "delivery_mode": 1},
    {"delivery_mode": 2, "timestamp": datetime(2026, 1, 1, 12, 30)},  # naive: taken as UTC
    {"timestamp": datetime(2026, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))},
    {"content_type": "", "message_id": "ü-ñ"},
    {"message_id": "x" * 255},
    {"content_type": "text/plain", "headers": {"a": 1}, "priority": 3},  # pamqp's path
    {"message_id": "x" * 256},  # too long for the quick path: pamqp decides
]  # fmt: skip


@pytest.mark.parametrize("properties", PROPERTIES)
@pytest.mark.parametrize("body", [b"", b'{"id":1}', bytes(range(256)) * 20])
async def test_publish_frames_match_pamqp(properties: dict[str, Any], body: bytes) -> None:
    """A hand-encoded header or body that differed from pamqp's would corrupt messages."""
    written: list[list[bytes]] = []
    outbox = Outbox(3, written.append, frame_max=1024)
    try:
        expected = pamqp_frames(3, body, properties, chunk=1024 - 8)
    except Exception:
        with pytest.raises(Exception, match="properties"):
            outbox.publish(body, properties, ("x", "k", False))
        return
    outbox.publish(body, properties, ("x", "k", False))
    outbox.flush()
    method = pamqp.frame.marshal(pamqp.commands.Basic.Publish(exchange="x", routing_key="k"), 3)
    assert b"".join(written[0]) == method + expected


@pytest.mark.parametrize("tag", [1, 255, 2**40 + 7])
async def test_ack_and_reject_frames_match_pamqp(tag: int) -> None:
    """Acks and rejects are packed directly; the broker must read them as pamqp's."""
    written: list[list[bytes]] = []
    outbox = Outbox(5, written.append, frame_max=0)
    outbox.ack(tag)
    outbox.reject(tag, requeue=False)
    outbox.reject(tag, requeue=True)
    outbox.flush()
    expected = [
        pamqp.commands.Basic.Ack(tag),
        pamqp.commands.Basic.Reject(tag, False),
        pamqp.commands.Basic.Reject(tag, True),
    ]
    assert written == [[pamqp.frame.marshal(frame, 5) for frame in expected]]
