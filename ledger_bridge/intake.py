"""Turning a confirmed trade (or an inspector's test) into ledger entries and index rows.

Runs only on the bridge's writer thread, inside a batch (see ``writer.py``), so the
matching state it reads (lots on hand, devices, parties) is exactly the state the previous
trades of the batch left. Order of work for a trade:

1. duplicate? (by ``trade_id``, on the ledger, the truth) -> nothing changes;
2. the contract (schema, gateway signature, amounts, device) -> a ``rejected`` entry with
   the reason when it fails;
3. buyer party from the payer id, FIFO allocation of each line against the seller's lots;
4. entries: the public trade, the private trade (only the parties' nodes keep it), one
   allocation per line; then the index rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from market_protocol import ORGS, canonical_json
from trace_ledger import LedgerEntry
from trace_ledger.rules.allocation import LineAllocation, Lot, allocate_line
from trace_ledger.rules.contract import DeviceRecord, Verdict

from .catalogue import Catalogue
from .public_view import payer_salt, private_record, public_record
from .trace_store import TraceStore

__all__ = ["Intake", "IntakeResult", "RAPID_TEST_RESULTS"]

log = logging.getLogger(__name__)

RAPID_TEST_RESULTS = ("pass", "fail")


@dataclass
class IntakeResult:
    """``status``: accepted, duplicate or rejected (then ``verdict`` says why)."""

    trade_id: str | None
    status: str
    record_id: str
    verdict: Verdict | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"trade_id": self.trade_id, "status": self.status,
                                "record_id": self.record_id}
        if self.verdict is not None and not self.verdict.ok:
            body["reason"] = self.verdict.to_dict()
        if self.findings:
            body["findings"] = self.findings
        return body


def _now_ms() -> int:
    return int(time.time() * 1000)


def private_record_id(trade_id: str) -> str:
    return f"{trade_id}/private"


def allocation_record_id(lot_id: str) -> str:
    return f"alloc:{lot_id}"


class Intake:
    def __init__(self, ledger: Any, store: TraceStore, *,
                 contract: Callable[[Any, DeviceRecord | None], Verdict],
                 secret: bytes, catalogue: Callable[[], Catalogue],
                 enrol_unknown_devices: bool = True,
                 clock: Callable[[], int] = _now_ms) -> None:
        self.ledger = ledger
        self.store = store
        self.contract = contract
        self.secret = secret
        self.catalogue = catalogue
        self.enrol_unknown_devices = enrol_unknown_devices
        self.clock = clock

    # trades ----------------------------------------------------------------------------
    def trade(self, trade: Any) -> IntakeResult:
        trade_id = trade.get("trade_id") if isinstance(trade, dict) else None
        if isinstance(trade_id, str) and self.store.has_trade(trade_id):
            return IntakeResult(trade_id, "duplicate", trade_id)
        if isinstance(trade_id, str) and self._on_ledger(trade_id):
            self._reindex(trade_id)
            return IntakeResult(trade_id, "duplicate", trade_id)
        device, provisional = self._device_for(trade)
        verdict = self.contract(trade, device)
        if not verdict.ok:
            return self._reject(trade, verdict)
        if provisional and device is not None:  # a provisional device is always given
            self._put_device(device, "first-trade")
        return self._accept(trade)

    def _on_ledger(self, record_id: str) -> bool:
        """Committed already? Every entry carries its record id as a trace key, so the
        blocks' Bloom filters answer "no" for a new record without touching storage."""
        return any(location.record_id == record_id
                   for location in self.ledger.locate(record_id))

    def _device_for(self, trade: Any) -> tuple[DeviceRecord | None, bool]:
        try:
            sale, seller = trade["sale"], trade["seller"]
            device_id, merchant, at = sale["device_id"], seller["merchant_id"], \
                sale["created_at_ms"]
        except (KeyError, TypeError):
            return None, False
        if not isinstance(device_id, str):
            return None, False
        known = self.store.device(device_id)
        if known is not None or not self.enrol_unknown_devices:
            return known, False
        if not isinstance(merchant, str) or not isinstance(at, int):
            return None, False
        # The gateway enrolled this terminal and signed the trade, so the first trade seen
        # registers the device for that seller. Its enrolment time is not known here, and
        # trades of one device may arrive out of order (store-and-forward), so no sale of it
        # is refused as "before enrolment"; an enrolment through the admin API is exact.
        return DeviceRecord(device_id, merchant, 0), True

    def _put_device(self, device: DeviceRecord, source: str) -> None:
        self.store.put_device(device, source)

    def _reject(self, trade: Any, verdict: Verdict) -> IntakeResult:
        trade_id = trade.get("trade_id") if isinstance(trade, dict) else None
        trade_id = trade_id if isinstance(trade_id, str) else None
        received = _redacted(trade, self.secret)
        try:
            body = canonical_json.dumps(received)
        except (canonical_json.CanonicalJSONError, TypeError):
            received = {"unparsable": repr(trade)[:4000]}
            body = canonical_json.dumps(received)
        record_id = "rejected:" + hashlib.sha256(body).hexdigest()[:40]
        if self.store.has_rejected(record_id) or self._on_ledger(record_id):
            return IntakeResult(trade_id, "rejected", record_id, verdict)
        at = self.clock()
        record = {"schema": "tracepay.rejected/1", "trade_id": trade_id, "code": verdict.code,
                  "reason": verdict.reason, "received": received, "received_at_ms": at}
        keys = [record_id, f"rejected:{verdict.code}"] + ([trade_id] if trade_id else [])
        org = _seller_org(trade)
        receipts = self.ledger.submit([LedgerEntry("rejected", record_id, record, keys,
                                                   (org,) if org else None)])
        _expect_ok(receipts)
        self.store.record_rejected(record_id, trade_id, verdict.code, verdict.reason, at)
        log.info("rejected trade %s: %s (%s)", trade_id, verdict.code, verdict.reason)
        return IntakeResult(trade_id, "rejected", record_id, verdict)

    def _accept(self, trade: dict[str, Any]) -> IntakeResult:
        trade_id = trade["trade_id"]
        seller = trade["seller"]
        buyer = self.store.party_for_payer(trade["payment"].get("payer_id"))
        if buyer is not None and buyer["merchant_id"] == seller["merchant_id"]:
            buyer = None  # a vendor paying itself is not a purchase
        salt = payer_salt(self.secret, trade_id)
        catalogue = self.catalogue()
        public = public_record(trade, salt=salt, resolve_product=catalogue.resolve, buyer=buyer)
        allocations, changed = self._allocate(public)
        finds = seller["org"] != "production_base"
        entries = [LedgerEntry("trade", trade_id, public, _trade_keys(public)),
                   LedgerEntry("trade_private", private_record_id(trade_id),
                               private_record(trade, salt),
                               [private_record_id(trade_id), trade_id],
                               _parties_orgs(seller, buyer))]
        entries += [LedgerEntry("allocation", allocation_record_id(lot_id), a.to_record(),
                                [allocation_record_id(lot_id), lot_id,
                                 *(d.lot_id for d in a.draws)][:64])
                    for lot_id, a in allocations]
        _expect_ok(self.ledger.submit(entries))
        self.store.record_trade(public, [a for _, a in allocations], changed.values(), finds)
        findings = [{"lot_id": lot_id, "product": a.product, "unmatched": a.unmatched,
                     "measure": a.measure}
                    for lot_id, a in allocations if finds and a.unmatched > 0]
        return IntakeResult(trade_id, "accepted", trade_id, None, findings)

    def _allocate(self, public: Mapping[str, Any]
                  ) -> tuple[list[tuple[str, LineAllocation]], dict[str, Lot]]:
        holder = public["seller"]["merchant_id"]
        changed: dict[str, Lot] = {}
        out: list[tuple[str, LineAllocation]] = []
        for line in public["lines"]:
            lots = {lot.lot_id: lot for lot in
                    self.store.stock(holder, line["product"], line["measure"])}
            lots.update({k: v for k, v in changed.items() if k in lots})
            allocation, moved = allocate_line(
                lots.values(), trade_id=public["trade_id"], line=line["line"], holder=holder,
                product=line["product"], measure=line["measure"], amount=line["amount"],
                at_ms=public["sold_at_ms"], label=line["lot"])
            changed.update(moved)
            out.append((line["lot_id"], allocation))
        return out, changed

    def _reindex(self, trade_id: str) -> None:
        """The ledger has a trade the index lost (a crash between block and index commit):
        rebuild its index rows from the ledger's own records."""
        entry = self.ledger.get(trade_id)
        public = entry.record if entry is not None else None
        if public is None:
            log.warning("trade %s is on the ledger but its record is not held here", trade_id)
            return
        allocations = []
        changed: dict[str, Lot] = {}
        for line in public["lines"]:
            stored = self.ledger.get(allocation_record_id(line["lot_id"]))
            if stored is None or stored.record is None:
                continue
            allocation = LineAllocation.from_record(stored.record)
            allocations.append(allocation)
            for draw in allocation.draws:
                lot = changed.get(draw.lot_id) or self._lot(draw.lot_id)
                if lot is not None:
                    changed[draw.lot_id] = Lot(lot.lot_id, lot.holder, lot.product,
                                               lot.measure, lot.amount,
                                               lot.remaining - draw.amount,
                                               lot.received_at_ms, lot.label)
        finds = public["seller"]["org"] != "production_base"
        self.store.record_trade(public, allocations, changed.values(), finds)
        log.warning("re-indexed trade %s from the ledger", trade_id)

    def _lot(self, lot_id: str) -> Lot | None:
        row = self.store.line(lot_id)
        if row is None or row["buyer"] is None:
            return None
        return Lot(row["lot_id"], row["buyer"], row["product"], row["measure"], row["amount"],
                   row["remaining"], row["received_at_ms"], row["label"])

    # devices -------------------------------------------------------------------------
    def register_device(self, device: DeviceRecord) -> dict[str, Any]:
        """An enrolment (or revocation) from the admin API; on the ledger so every node
        can check "enrolled at that time" against the same history."""
        record = {"schema": "tracepay.device/1", **device.to_dict()}
        record_id = "device:" + hashlib.sha256(canonical_json.dumps(record)).hexdigest()[:32]
        if not self._on_ledger(record_id):
            _expect_ok(self.ledger.submit([LedgerEntry(
                "device", record_id, record,
                [record_id, device.device_id, device.merchant_id])]))
        self._put_device(device, "admin")
        return record

    # rapid tests ---------------------------------------------------------------------
    def rapid_test(self, lot_key: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Record an inspector's result against every lot ``lot_key`` names.

        Returns (record, created). Raises LookupError for an unknown lot and ValueError for
        a bad body.
        """
        lot_ids = self.store.lot_ids_for(lot_key)
        if not lot_ids:
            raise LookupError(lot_key)
        record = _rapid_test_record(lot_key, lot_ids, body, self.clock)
        record_id = f"test:{record['test_id']}"
        if self.store.has_rapid_test(record["test_id"]):
            return record, False
        keys = list(dict.fromkeys([record_id, lot_key, *lot_ids]))[:64]
        _expect_ok(self.ledger.submit([LedgerEntry("rapid_test", record_id, record, keys)]))
        self.store.add_rapid_test(record)
        return record, True


def _rapid_test_record(lot_key: str, lot_ids: list[str], body: Mapping[str, Any],
                       clock: Callable[[], int]) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise ValueError("body must be a JSON object")
    unknown = sorted(set(body) - {"result", "values", "inspector", "tested_at_ms", "test_id",
                                  "method", "note"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    result = body.get("result")
    if result not in RAPID_TEST_RESULTS:
        raise ValueError("result must be 'pass' or 'fail'")
    inspector = body.get("inspector")
    if not isinstance(inspector, str) or not 0 < len(inspector) <= 80:
        raise ValueError("inspector must name who tested (1-80 characters)")
    values = body.get("values", {})
    if not isinstance(values, Mapping) or len(values) > 32:
        raise ValueError("values must be an object of at most 32 measurements")
    measured: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) \
                or len(str(name)) > 64:
            raise ValueError(f"value {name!r} must be a number or a short string")
        # Kept as text: the ledger's canonical JSON has no floats, and "35.20" stays "35.20".
        measured[str(name)] = str(value)[:64]
    tested_at = body.get("tested_at_ms", clock())
    if isinstance(tested_at, bool) or not isinstance(tested_at, int) or tested_at < 0:
        raise ValueError("tested_at_ms must be epoch milliseconds")
    test_id = body.get("test_id") or uuid.uuid4().hex
    if not isinstance(test_id, str) or not 0 < len(test_id) <= 64 or not test_id.replace(
            "-", "").replace("_", "").isalnum():
        raise ValueError("test_id must be 1-64 letters, digits, '-' or '_'")
    for name in ("method", "note"):
        if body.get(name) is not None and (not isinstance(body[name], str)
                                           or len(body[name]) > 200):
            raise ValueError(f"{name} must be text of at most 200 characters")
    return {"schema": "tracepay.rapid_test/1", "test_id": test_id, "lot": lot_key,
            "lot_ids": lot_ids, "result": result, "values": measured, "inspector": inspector,
            "method": body.get("method"), "note": body.get("note"), "tested_at_ms": tested_at}


def _expect_ok(receipts: Any) -> None:
    for receipt in receipts:
        if receipt.status == "refused":
            raise RuntimeError(f"ledger refused {receipt.record_id}: {receipt.refusals}")


def _trade_keys(public: Mapping[str, Any]) -> list[str]:
    keys = [public["trace_code"], public["trade_id"], public["seller"]["merchant_id"]]
    if "merchant_id" in public["buyer"]:
        keys.append(public["buyer"]["merchant_id"])
    if public["payer_hash"]:
        keys.append(public["payer_hash"])
    for line in public["lines"]:
        keys.append(line["lot_id"])
        if line["lot"]:
            keys.append(line["lot"])
    return list(dict.fromkeys(keys))[:64]


def _parties_orgs(seller: Mapping[str, Any], buyer: Mapping[str, Any] | None
                  ) -> tuple[str, ...]:
    orgs = [seller["org"]] + ([buyer["org"]] if buyer else [])
    return tuple(dict.fromkeys(org for org in orgs if org in ORGS))


def _seller_org(trade: Any) -> str | None:
    try:
        org = trade["seller"]["org"]
    except (KeyError, TypeError):
        return None
    return org if org in ORGS else None


def _redacted(trade: Any, secret: bytes) -> Any:
    """A rejected trade is kept as received, except the payer's account: hashed."""
    if not isinstance(trade, dict):
        return {"unparsable": repr(trade)[:4000]}
    payment = trade.get("payment")
    if isinstance(payment, dict) and isinstance(payment.get("payer_id"), str):
        salt = payer_salt(secret, str(trade.get("trade_id")))
        digest = hashlib.sha256(salt + b"|" + payment["payer_id"].encode()).hexdigest()
        return {**trade, "payment": {**payment, "payer_id": f"sha256:{digest}"}}
    return trade
