"""The ledger's transaction stream on NATS JetStream: its name, its message format and the
bridge's publisher.

The stream is the one total order of the ledger: every organisation's node reads it through
its own durable consumer and cuts the same blocks from the same sequence numbers, so this
module fixes exactly what a message is. One message is one batch of ledger entries::

    {"schema": "tracepay.ledger_batch/1", "batch_id": ID, "entries": [ENTRY, ...]}
    ENTRY = {"kind", "record_id", "record", "trace_keys", "visible_to"}

with the header ``Nats-Msg-Id: ID`` and ``ID = "b1:" + sha256(canonical_json(entries))``.
The id depends only on the entries, so a batch re-published after a lost ack or a bridge
crash carries the same id and JetStream drops the copy inside the de-duplication window.

:class:`StreamPublisher` is synchronous on purpose: the bridge's writer is a thread, and
nats-py is asyncio, so the publisher runs its own event loop in a thread of its own and
hands each publish over to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.js import api as js_api

from market_protocol import canonical_json

from .entries import LedgerEntry

__all__ = ["STREAM", "SUBJECT_PREFIX", "SUBJECTS", "BATCH_SCHEMA", "BATCH_ID_PREFIX",
           "DUPLICATE_WINDOW_S", "MAX_BATCH_BYTES", "BatchFormatError", "StreamError",
           "StreamUnavailableError", "batch_body", "batch_id_of", "parse_batch",
           "stream_config", "ensure_stream", "StreamPublisher"]

log = logging.getLogger(__name__)

#: The JetStream stream that carries the ledger's transactions.
STREAM = "LEDGER"
#: A bridge publishes on ``ledger.tx.<bridge_id>``.
SUBJECT_PREFIX = "ledger.tx."
SUBJECTS = [SUBJECT_PREFIX + ">"]
#: The ``schema`` member of every batch body.
BATCH_SCHEMA = "tracepay.ledger_batch/1"
#: Batch ids are versioned so that a later id rule cannot collide with this one.
BATCH_ID_PREFIX = "b1:"
#: How long JetStream remembers a ``Nats-Msg-Id``. Ten minutes covers a lost ack, a bridge
#: restart and its retries with room to spare; the cost is one remembered id per batch (a
#: few thousand at peak), held in every server's memory. Past the window the nodes still
#: skip a record_id already on their ledger, deterministically, so the window is the cheap
#: first line, not the only one.
DUPLICATE_WINDOW_S = 600.0
#: The largest batch body the bridge publishes. The servers are configured with a
#: ``max_payload`` above it (``tracepay nats``); NATS' own default is 1 MiB.
MAX_BATCH_BYTES = 4 * 1024 * 1024

_ENTRY_FIELDS = frozenset({"kind", "record_id", "record", "trace_keys", "visible_to"})


class BatchFormatError(ValueError):
    """A stream message is not a well-formed ``tracepay.ledger_batch/1``; says what is wrong."""


class StreamError(RuntimeError):
    """Publishing to the stream failed; nothing may be acknowledged upstream."""


class StreamUnavailableError(StreamError):
    """JetStream did not acknowledge in time: no quorum (too few servers up), no stream
    leader yet, or no server reachable. Retrying the same batch later is safe."""


def _entry_dict(entry: LedgerEntry) -> dict[str, Any]:
    return {"kind": entry.kind, "record_id": entry.record_id, "record": entry.record,
            "trace_keys": list(entry.trace_keys),
            "visible_to": None if entry.visible_to is None else list(entry.visible_to)}


def batch_id_of(canonical_entries: bytes) -> str:
    """The batch id for the canonical JSON bytes of a batch's entry list."""
    return BATCH_ID_PREFIX + hashlib.sha256(canonical_entries).hexdigest()


def batch_body(entries: Sequence[LedgerEntry]) -> tuple[str, bytes]:
    """``(batch_id, body)`` for one stream message holding ``entries`` in order.

    The entry list is encoded once in canonical form; that same byte string is both what
    the id hashes and the ``entries`` member of the body, so a reader can recompute the id
    from what it parsed. Raises :class:`BatchFormatError` for an empty batch or an entry
    that has no canonical JSON form (a float in the record, a non-string key).
    """
    if not entries:
        raise BatchFormatError("a batch needs at least one entry")
    try:
        canonical_entries = canonical_json.dumps([_entry_dict(entry) for entry in entries])
    except (ValueError, TypeError) as exc:
        raise BatchFormatError(f"entries have no canonical JSON form: {exc}") from exc
    batch_id = batch_id_of(canonical_entries)
    body = b"".join((b'{"schema":', orjson.dumps(BATCH_SCHEMA), b',"batch_id":',
                     orjson.dumps(batch_id), b',"entries":', canonical_entries, b"}"))
    return batch_id, body


def parse_batch(body: bytes) -> tuple[str, list[LedgerEntry]]:
    """``(batch_id, entries)`` from a stream message body.

    Checks the structure only (JSON object, schema, each entry's members and their types,
    and that the id is the hash of the entries); whether an entry is admissible on the
    ledger is each node's own validation. Raises :class:`BatchFormatError` saying what is
    wrong, never anything else, so a node can record the message as refused and go on.
    """
    try:
        document = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise BatchFormatError(f"batch body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BatchFormatError("batch body must be a JSON object")
    if document.get("schema") != BATCH_SCHEMA:
        raise BatchFormatError(f"batch schema {document.get('schema')!r}, "
                               f"expected {BATCH_SCHEMA!r}")
    batch_id, raw_entries = document.get("batch_id"), document.get("entries")
    if not isinstance(batch_id, str) or not batch_id.startswith(BATCH_ID_PREFIX):
        raise BatchFormatError(f"batch_id {batch_id!r} must be a string starting "
                               f"{BATCH_ID_PREFIX!r}")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise BatchFormatError(f"{batch_id}: entries must be a non-empty list")
    entries = [_parse_entry(batch_id, position, raw) for position, raw in enumerate(raw_entries)]
    try:
        expected = batch_id_of(canonical_json.dumps(raw_entries))
    except (ValueError, TypeError) as exc:
        raise BatchFormatError(f"{batch_id}: entries have no canonical JSON form: {exc}") from None
    if expected != batch_id:
        raise BatchFormatError(f"batch_id {batch_id} does not match its entries ({expected})")
    return batch_id, entries


def _parse_entry(batch_id: str, position: int, raw: Any) -> LedgerEntry:
    where = f"{batch_id} entry {position}"
    if not isinstance(raw, dict):
        raise BatchFormatError(f"{where}: must be a JSON object")
    if set(raw) != _ENTRY_FIELDS:
        raise BatchFormatError(f"{where}: members {sorted(raw)}, expected {sorted(_ENTRY_FIELDS)}")
    kind, record_id, record = raw["kind"], raw["record_id"], raw["record"]
    trace_keys, visible_to = raw["trace_keys"], raw["visible_to"]
    if not isinstance(kind, str) or not isinstance(record_id, str):
        raise BatchFormatError(f"{where}: kind and record_id must be strings")
    if not isinstance(record, dict):
        raise BatchFormatError(f"{where} ({record_id}): record must be a JSON object")
    if not isinstance(trace_keys, list) or not all(isinstance(k, str) for k in trace_keys):
        raise BatchFormatError(f"{where} ({record_id}): trace_keys must be a list of strings")
    if visible_to is not None and (not isinstance(visible_to, list)
                                   or not all(isinstance(org, str) for org in visible_to)):
        raise BatchFormatError(f"{where} ({record_id}): visible_to must be null or a list "
                               "of organisation names")
    return LedgerEntry(kind=kind, record_id=record_id, record=record, trace_keys=trace_keys,
                       visible_to=None if visible_to is None else tuple(visible_to))


def stream_config(replicas: int = 3) -> js_api.StreamConfig:
    """The ``LEDGER`` stream's configuration.

    File storage and limits retention with no age, size or count limit: the stream is what
    a node rebuilds its store from, so nothing may age out of it. ``allow_direct`` stays
    off: a direct get may be answered by a replica that lags, and nothing here needs reads
    outside the nodes' consumers.
    """
    return js_api.StreamConfig(
        name=STREAM, subjects=list(SUBJECTS), retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE, num_replicas=replicas, max_msgs=-1, max_bytes=-1,
        max_age=0, max_msg_size=MAX_BATCH_BYTES, discard=js_api.DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S, allow_direct=False, deny_delete=True,
        deny_purge=True)


async def ensure_stream(js: Any, replicas: int = 3) -> js_api.StreamInfo:
    """Create the ``LEDGER`` stream, or bring an existing one to :func:`stream_config`.

    Idempotent: every bridge calls it at start. An existing stream whose settings differ
    (another replica count, say) is updated in place; its messages stay.
    """
    wanted = stream_config(replicas)
    try:
        info = await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        return await js.add_stream(wanted)
    have = info.config
    if (have.subjects != wanted.subjects or have.num_replicas != wanted.num_replicas
            or have.duplicate_window != wanted.duplicate_window
            or have.max_msg_size != wanted.max_msg_size):
        log.info("updating stream %s to %s replicas", STREAM, replicas)
        return await js.update_stream(wanted)
    return info


class StreamPublisher:
    """Publishes ledger batches to the stream and waits for JetStream's acknowledgement.

    Synchronous: ``publish(entries)`` returns the stream sequence only once the stream's
    replicas have stored the batch (a quorum of them, for R3), and raises
    :class:`StreamUnavailableError` when that does not happen within ``ack_timeout_s``.
    A caller that acknowledges its own input only after ``publish`` returned therefore never
    acknowledges anything the stream does not hold; retrying after an error is safe, since
    the same entries make the same ``Nats-Msg-Id``.

    The connection reconnects by itself across the cluster's servers; while it is away,
    publishes fail with :class:`StreamUnavailableError` after their timeout.
    """

    def __init__(self, servers: Sequence[str], *, user: str | None = None,
                 password: str | None = None, bridge_id: str = "market",
                 ack_timeout_s: float = 5.0, connect_timeout_s: float = 10.0,
                 tls: ssl.SSLContext | None = None, name: str = "tracepay-bridge") -> None:
        if not servers:
            raise ValueError("StreamPublisher needs at least one nats:// server URL")
        self.subject = SUBJECT_PREFIX + bridge_id
        self.ack_timeout_s = ack_timeout_s
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="ledger-stream-publisher")
        self._thread.start()
        options: dict[str, Any] = {
            "servers": list(servers), "name": name, "connect_timeout": 2,
            "allow_reconnect": True, "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.25, "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnected, "reconnected_cb": self._on_reconnected}
        if user is not None:
            options.update(user=user, password=password)
        if tls is not None:
            options["tls"] = tls
        try:
            self._nc = self._call(nats.connect(**options), connect_timeout_s)
        except Exception as exc:
            self._stop_loop()
            raise StreamUnavailableError(f"cannot connect to NATS at {', '.join(servers)}: "
                                         f"{type(exc).__name__}: {exc}") from exc
        self._js = self._nc.jetstream(timeout=ack_timeout_s)

    # -- the loop thread ---------------------------------------------------------------
    def _call(self, coroutine: Any, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout + 1.0)
        except FutureTimeout:
            future.cancel()
            raise nats.errors.TimeoutError from None

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS connection: %s: %s", type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("NATS connection lost; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected to %s", self._nc.connected_url.netloc
                 if self._nc.connected_url else "?")

    # -- public ------------------------------------------------------------------------
    def ensure_stream(self, replicas: int = 3) -> js_api.StreamInfo:
        """:func:`ensure_stream` over this connection (the bridge user may create it)."""
        try:
            return self._call(ensure_stream(self._js, replicas), self.ack_timeout_s * 2)
        except nats.errors.TimeoutError as exc:
            raise StreamUnavailableError(f"stream {STREAM}: JetStream did not answer "
                                         "(no quorum or no meta leader yet)") from exc
        except nats.js.errors.APIError as exc:
            raise StreamError(f"stream {STREAM}: {exc.description or exc} "
                              f"(code {exc.code}, err_code {exc.err_code})") from exc

    def publish(self, entries: Sequence[LedgerEntry]) -> int:
        """Publish one batch; the stream sequence once acknowledged (also for a duplicate,
        whose sequence is that of the copy the stream already holds)."""
        batch_id, body = batch_body(entries)
        return self.publish_body(batch_id, body)

    def publish_body(self, batch_id: str, body: bytes) -> int:
        """Publish a body made by :func:`batch_body` (lets a caller keep the id it logged)."""
        if len(body) > MAX_BATCH_BYTES:
            raise BatchFormatError(f"{batch_id}: body of {len(body)} bytes exceeds "
                                   f"{MAX_BATCH_BYTES}; publish smaller batches")
        coroutine = self._js.publish(self.subject, body, timeout=self.ack_timeout_s,
                                     stream=STREAM, headers={"Nats-Msg-Id": batch_id})
        try:
            ack = self._call(coroutine, self.ack_timeout_s)
        except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError,
                nats.errors.ConnectionReconnectingError,
                nats.errors.ConnectionClosedError) as exc:
            raise StreamUnavailableError(
                f"{batch_id}: no acknowledgement from stream {STREAM} within "
                f"{self.ack_timeout_s}s ({type(exc).__name__}; no quorum or no server "
                "reachable); nothing was acknowledged, retry the same batch") from exc
        except nats.js.errors.ServiceUnavailableError as exc:
            raise StreamUnavailableError(f"{batch_id}: JetStream unavailable: "
                                         f"{exc.description or exc}") from exc
        except nats.js.errors.APIError as exc:
            raise StreamError(f"{batch_id}: stream {STREAM} refused the batch: "
                              f"{exc.description or exc} (err_code {exc.err_code})") from exc
        if ack.stream != STREAM:
            raise StreamError(f"{batch_id}: acknowledged by stream {ack.stream!r}, "
                              f"expected {STREAM!r}")
        return ack.seq

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    def close(self) -> None:
        """Flush and close the connection, then stop the loop thread."""
        if self._loop.is_closed():
            return
        self._closing = True
        try:
            self._call(self._nc.drain(), 5.0)
        except Exception as exc:  # closing anyway: a drain can fail on a dead server
            log.debug("NATS drain on close: %s", exc)
            with contextlib.suppress(Exception):  # already closing; nothing left to save
                self._call(self._nc.close(), 5.0)
        self._stop_loop()

    def __enter__(self) -> StreamPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
