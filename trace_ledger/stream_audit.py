"""Read the whole ``LEDGER`` stream back, batch by batch: what tests, benchmarks and an
operator use to count what the ordering holds (lost, duplicated) independently of any node.

Reads single messages by sequence (``STREAM.MSG.GET``), which the read-only ``auditor``
user may do; it creates no consumer, so it disturbs nothing the nodes rely on.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import nats
import nats.js.errors
from nats.js.api import RawStreamMsg

from .stream import STREAM, BatchFormatError, parse_batch

__all__ = ["StreamBatch", "StreamCount", "read_stream", "count_stream"]

_PARALLEL_GETS = 64


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """One stream message: its sequence, its ``Nats-Msg-Id`` and the record ids it carries
    (``error`` instead when the body is not a well-formed batch)."""

    seq: int
    msg_id: str | None
    batch_id: str | None
    record_ids: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamCount:
    """What the stream holds: messages, entries, distinct record ids and the record ids
    that appear more than once (``duplicated``)."""

    messages: int
    entries: int
    distinct: int
    duplicated: int
    malformed: int


async def _read(servers: Sequence[str], user: str | None, password: str | None,
                tls: ssl.SSLContext | None, timeout_s: float) -> list[StreamBatch]:
    options: dict = {"servers": list(servers), "connect_timeout": 2,
                     "max_reconnect_attempts": 3}
    if user is not None:
        options.update(user=user, password=password)
    if tls is not None:
        options["tls"] = tls
    connection = await nats.connect(**options)
    try:
        js = connection.jetstream(timeout=timeout_s)
        try:
            state = (await js.stream_info(STREAM)).state
        except nats.js.errors.NotFoundError:
            return []
        if not state.messages:
            return []
        sequences = list(range(state.first_seq, state.last_seq + 1))
        batches: list[StreamBatch] = []
        for start in range(0, len(sequences), _PARALLEL_GETS):
            chunk = sequences[start:start + _PARALLEL_GETS]
            messages = await asyncio.gather(*(js.get_msg(STREAM, seq) for seq in chunk))
            batches.extend(_batch(message, seq) for message, seq in zip(messages, chunk,
                                                                          strict=True))
        return batches
    finally:
        await connection.close()


def _batch(message: RawStreamMsg, asked_seq: int) -> StreamBatch:
    """One message as read; its sequence is the one asked for, should the server's answer
    leave it out (nats-py types it as optional)."""
    seq = message.seq if message.seq is not None else asked_seq
    msg_id = (message.headers or {}).get("Nats-Msg-Id")
    try:
        batch_id, entries = parse_batch(message.data or b"")
    except BatchFormatError as exc:
        return StreamBatch(seq, msg_id, None, (), str(exc))
    return StreamBatch(seq, msg_id, batch_id, tuple(e.record_id for e in entries))


def read_stream(servers: Sequence[str], *, user: str | None = None, password: str | None = None,
                tls: ssl.SSLContext | None = None, timeout_s: float = 10.0) -> list[StreamBatch]:
    """Every message of the ``LEDGER`` stream in sequence order (blocking)."""
    return asyncio.run(_read(servers, user, password, tls, timeout_s))


def count_stream(batches: Sequence[StreamBatch]) -> tuple[StreamCount, set[str]]:
    """Counts over :func:`read_stream`'s answer, and the set of record ids present."""
    occurrences = Counter(record_id for batch in batches for record_id in batch.record_ids)
    count = StreamCount(messages=len(batches), entries=sum(occurrences.values()),
                        distinct=len(occurrences),
                        duplicated=sum(n - 1 for n in occurrences.values() if n > 1),
                        malformed=sum(1 for batch in batches if batch.error))
    return count, set(occurrences)
