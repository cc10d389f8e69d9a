"""The node's follower outlives a failed acknowledgement: when the server holding its
consumer is killed between the commit and JetStream's answer to the ack (``no responders``),
the follower makes its consumer afresh from the store's position and goes on, applying
nothing twice (seen in bench/ledger_cluster.py --faults: two of three nodes stopped
following for good)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import nats.errors

from trace_ledger.node.follower import Follower
from trace_ledger.node.timings import StageTimings


class FakeChain:
    org = "retail_market"

    def __init__(self) -> None:
        self.stream_seq = 0
        self.applied: list[int] = []
        self.timings = StageTimings()

    def apply(self, seq: int, time_ms: int, body: bytes):  # noqa: ANN201
        if seq <= self.stream_seq:
            return None
        self.applied.append(seq)
        self.stream_seq = seq
        return SimpleNamespace(height=seq, admitted=1)


class FakeMessage:
    def __init__(self, seq: int, fail_ack: bool) -> None:
        self.data = b"{}"
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq),
                                        timestamp=SimpleNamespace(timestamp=lambda: 1.0))
        self.fail_ack, self.acked = fail_ack, False

    async def ack_sync(self) -> None:
        if self.fail_ack:
            raise nats.errors.NoRespondersError
        self.acked = True


class FakeStream:
    """A stream of 5 messages; the ack of message 2 fails once."""

    def __init__(self, follower: Follower, chain: FakeChain) -> None:
        self.follower, self.chain = follower, chain
        self.starts: list[int] = []
        self.failed_once = False

    def jetstream(self, timeout: float) -> FakeStream:
        return self

    async def delete_consumer(self, stream: str, durable: str) -> None:
        return None

    async def pull_subscribe(self, subject: str, *, durable: str, stream: str, config):  # noqa: ANN001, ANN201
        start = config.opt_start_seq
        self.starts.append(start)
        stream_self = self

        class Subscription:
            async def fetch(self, batch: int, timeout: float) -> list[FakeMessage]:
                if stream_self.chain.stream_seq >= 5:
                    stream_self.follower._stop.set()
                    raise nats.errors.TimeoutError
                messages = []
                for seq in range(start, 6):
                    fail = seq == 2 and not stream_self.failed_once
                    stream_self.failed_once |= fail
                    messages.append(FakeMessage(seq, fail))
                return messages

            async def unsubscribe(self) -> None:
                return None

        return Subscription()


def test_a_failed_ack_makes_the_consumer_afresh_and_applies_nothing_twice():
    chain = FakeChain()
    follower = Follower(chain, ["nats://127.0.0.1:1"], user=None, password=None)  # type: ignore[arg-type]
    stream = FakeStream(follower, chain)
    asyncio.run(asyncio.wait_for(follower._consume(stream), 10))
    assert chain.applied == [1, 2, 3, 4, 5]
    assert stream.starts == [1, 3]       # made afresh after the commit of 2, from 3
