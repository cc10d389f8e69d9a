"""What goes into the ledger and what comes back out: entries, receipts, locations.

An entry pairs a full record (kept off-chain by the nodes allowed to see it) with the
trace keys that find it; the chain itself holds only the record's hash and those keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from market_protocol import ORGS, canonical_json
from market_protocol.canonical_json import CanonicalJSONError

__all__ = ["LedgerEntry", "Receipt", "Location", "StoredEntry", "LedgerEntryError",
           "leaf_data", "leaf_data_from_json", "canonical_record", "MAX_TRACE_KEYS", "MAX_KEY_LENGTH"]

MAX_TRACE_KEYS = 64
MAX_KEY_LENGTH = 256
_kind_ok = re.compile(r"[a-z][a-z0-9_]{0,31}").fullmatch
_record_id_ok = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}").fullmatch


_NO_REFUSALS: Mapping[str, str] = MappingProxyType({})


class LedgerEntryError(ValueError):
    """An entry cannot be put on the ledger as given; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One record to commit. ``visible_to`` names the organisations whose node keeps the
    full record; ``None`` means every node does. The others keep only its hash."""

    kind: str
    record_id: str
    record: dict[str, Any]
    trace_keys: list[str]
    visible_to: tuple[str, ...] | None = None

    def check(self) -> bytes:
        """Validate the entry and return the canonical bytes of its record.

        Runs once per entry on the ordering path, so the field checks are inlined and the
        record goes straight to :func:`canonical_json.dumps` (same messages as
        :func:`canonical_record`, one call and one handler fewer).
        """
        kind, record_id, keys = self.kind, self.record_id, self.trace_keys
        if not isinstance(kind, str) or not _kind_ok(kind):
            raise LedgerEntryError(f"kind {kind!r}: lower-case word such as 'trade'")
        if not isinstance(record_id, str) or not _record_id_ok(record_id):
            raise LedgerEntryError(f"record_id {record_id!r}: 1-128 chars [A-Za-z0-9_.:/-]")
        if not isinstance(keys, (list, tuple)) or len(keys) > MAX_TRACE_KEYS:
            raise LedgerEntryError(f"{record_id}: trace_keys must be a list of at most "
                                   f"{MAX_TRACE_KEYS} strings")
        for key in keys:
            if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
                raise LedgerEntryError(f"{record_id}: trace key {key!r} must be a non-empty "
                                       f"string of at most {MAX_KEY_LENGTH} characters")
        try:  # a key the leaf's JSON cannot hold would fail every block it is cut into
            "".join(keys).encode()
        except UnicodeEncodeError:
            bad = next(key for key in keys if not key.isascii() and _not_utf8(key))
            raise LedgerEntryError(f"{record_id}: trace key {bad!r} is not valid Unicode "
                                   "text (a lone surrogate)") from None
        if self.visible_to is not None:
            unknown = [org for org in self.visible_to if org not in ORGS]
            if unknown:
                raise LedgerEntryError(f"{record_id}: visible_to names unknown orgs {unknown}")
        if not isinstance(self.record, dict):
            raise LedgerEntryError(f"{record_id}: record must be a JSON object")
        try:
            return canonical_json.dumps(self.record)
        except (ValueError, TypeError) as exc:
            raise LedgerEntryError(f"{record_id}: record is not canonical JSON: {exc}") from exc


def _not_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def canonical_record(record: dict[str, Any]) -> bytes:
    """The record's canonical bytes (``market_protocol.canonical_json``), as hashed on-chain."""
    try:
        return canonical_json.dumps(record)
    except CanonicalJSONError as exc:
        raise ValueError(str(exc)) from exc


def leaf_data(kind: str, record_id: str, record_hash_hex: str, trace_keys: list[str]) -> bytes:
    """The exact bytes a leaf commits to (docs/protocol.md §7): keys sorted, duplicates kept
    out, so the same entry always yields the same leaf. Every value is a string (checked by
    :meth:`LedgerEntry.check`), so no float check is needed for canonical form."""
    return leaf_data_from_json(kind, record_id, record_hash_hex,
                               orjson.dumps(sorted(set(trace_keys))))


def leaf_data_from_json(kind: str, record_id: str, record_hash_hex: str,
                        keys_json: bytes) -> bytes:
    """:func:`leaf_data` when the sorted, distinct keys are already JSON (as stored).

    The four members are joined in their sorted order instead of encoding a dict with
    sorted keys: the same bytes for a quarter of the work, which matters because every
    commit and every verification builds one per leaf (tests pin the equality).
    """
    return b"".join((b'{"kind":', _dumps(kind), b',"record_hash":', _dumps(record_hash_hex),
                     b',"record_id":', _dumps(record_id), b',"trace_keys":', keys_json, b"}"))


_dumps = orjson.dumps


class Receipt(NamedTuple):
    """The answer to one submitted entry.

    ``status`` is ``accepted`` (endorsed by every node and queued for the next block),
    ``duplicate`` (its record_id is already queued or committed; nothing changes) or
    ``refused`` (some node's endorsement rule said no; ``refusals`` maps org -> reason and
    the entry was not queued, so the caller can record it as a ``rejected`` entry).
    A tuple, not a dataclass: one is made per entry on the commit path (a fifth of the
    cost), and ``refusals`` is a shared read-only mapping unless something was refused.
    """

    record_id: str
    status: str
    refusals: Mapping[str, str] = _NO_REFUSALS


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record sits on the chain."""

    record_id: str
    kind: str
    height: int
    index: int


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A committed entry as one node holds it. ``record`` and ``record_canonical`` are None
    on a node outside ``visible_to``; ``held_by`` lists the orgs that keep the full record."""

    record_id: str
    kind: str
    height: int
    index: int
    record_hash: str
    leaf_hash: str
    trace_keys: list[str]
    record: dict[str, Any] | None
    record_canonical: str | None
    held_by: tuple[str, ...]
