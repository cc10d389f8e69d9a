"""The node's durable JetStream pull consumer: messages strictly in stream order, each
acknowledged only after what it made is committed in the node's store.

A kill -9 between commit and ack makes JetStream deliver the message again; the node sees
its sequence already committed and acks it without applying it twice. The consumer
(``node-<org>``, deliver-all, explicit ack, one message in flight) is the node's own, so
a restarted node, or one rebuilding an empty store, resumes from wherever it stands.
When the acknowledgement itself fails (the server holding the consumer was killed), the
consumer is made afresh from the store's position the same way; no error ends the loop
before the node is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js import api as js_api

from ..stream import STREAM, SUBJECTS
from .chain import NodeChain

__all__ = ["Follower", "consumer_name"]

log = logging.getLogger(__name__)

#: Messages fetched per pull; the node applies a fetched batch in order, acking each after
#: its commit, before it fetches again.
FETCH = 64
#: A message not acknowledged within this is delivered again (a node killed mid-block).
ACK_WAIT_S = 30.0


def consumer_name(org: str) -> str:
    return f"node-{org}"


class Follower:
    """Runs the consumer loop on its own thread with its own asyncio loop."""

    def __init__(self, chain: NodeChain, servers: Sequence[str], *, user: str | None,
                 password: str | None, tls: ssl.SSLContext | None = None) -> None:
        self.chain, self.servers = chain, list(servers)
        self.user, self.password, self.tls = user, password, tls
        self.connected = False
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-node-follower",
                                        daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        options: dict[str, Any] = {"servers": self.servers, "name": consumer_name(self.chain.org),
                                   "allow_reconnect": True, "max_reconnect_attempts": -1,
                                   "reconnect_time_wait": 0.25, "connect_timeout": 2}
        if self.user is not None:
            options.update(user=self.user, password=self.password)
        if self.tls is not None:
            options["tls"] = self.tls
        while not self._stop.is_set():
            try:
                nc = await nats.connect(**options)
            except Exception as exc:  # no server yet: keep trying until stopped
                self.error = f"cannot connect: {type(exc).__name__}: {exc}"
                log.warning("node %s: %s", self.chain.org, self.error)
                await asyncio.sleep(1.0)
                continue
            try:
                await self._consume(nc)
            except Exception as exc:  # whatever it was, the loop must outlive it
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("node %s: following stopped; connecting again", self.chain.org)
                await asyncio.sleep(1.0)
            finally:
                self.connected = False
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _consume(self, nc: Any) -> None:
        js = nc.jetstream(timeout=10)
        durable = consumer_name(self.chain.org)
        subscription = None
        while not self._stop.is_set():
            try:
                if subscription is None:
                    config = await self._reset_consumer(js, durable)
                    subscription = await js.pull_subscribe(SUBJECTS[0], durable=durable,
                                                           stream=STREAM, config=config)
                    self.connected, self.error = True, None
                    log.info("node %s follows stream %s from sequence %d", self.chain.org,
                             STREAM, self.chain.stream_seq + 1)
                fetch_started = time.perf_counter()
                messages = await subscription.fetch(FETCH, timeout=1.0)
                self.chain.timings.add("fetch", time.perf_counter() - fetch_started)
            except nats.errors.TimeoutError:
                self.chain.timings.add("fetch", time.perf_counter() - fetch_started)
                continue
            except Exception as exc:  # stream not created yet, no quorum, reconnecting
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("node %s: consumer: %s", self.chain.org, self.error)
                subscription = None
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                meta = message.metadata
                seq = meta.sequence.stream
                time_ms = int(meta.timestamp.timestamp() * 1000)
                applied = await asyncio.to_thread(self.chain.apply, seq, time_ms, message.data)
                if applied is not None and applied.height is not None:
                    log.debug("node %s: stream_seq %d -> block %d (%d entries)",
                              self.chain.org, seq, applied.height, applied.admitted)
                ack_started = time.perf_counter()
                try:
                    await message.ack_sync()
                except Exception as exc:  # the consumer's server died mid-ack (kill -9)
                    # The commit stands; the consumer is made afresh from the store's
                    # position, so the rest of this fetch comes again and nothing twice.
                    self.error = f"ack of stream_seq {seq}: {type(exc).__name__}: {exc}"
                    log.warning("node %s: %s; following again from %d", self.chain.org,
                                self.error, self.chain.stream_seq + 1)
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                    subscription = None
                    break
                finally:
                    self.chain.timings.add("ack", time.perf_counter() - ack_started)

    async def _reset_consumer(self, js: Any, durable: str) -> js_api.ConsumerConfig:
        """The node's store, not the consumer, says where it stands: the consumer is made
        afresh to start right after the last committed sequence (every message from 1 for
        an empty store), so a restarted node does not wait ``ack_wait`` for the messages
        it held unacknowledged when it died, and a node whose store was deleted rebuilds."""
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(STREAM, durable)
        return js_api.ConsumerConfig(
            durable_name=durable, deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.chain.stream_seq + 1, ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S, filter_subject=SUBJECTS[0])
