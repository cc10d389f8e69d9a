"""EPCIS 2.0 JSON-LD export of trades, harvests and rapid tests, so other trace systems can
take in our chains and see the whole story, not just the sales.

- A trade is a TransactionEvent "shipping" from the seller (owning party) to the buyer and,
  when the buyer is a registered business, a "receiving" event at the buyer.
- A production base's sale line is also its harvest declaration: a "commissioning"
  ObjectEvent (action ADD) of the lot at the sale, with ILMD naming the lot
  (``cbvmda:lotNumber``) and the place of production (``tracepay:productionPlace``).
- A rapid test is an "inspecting" ObjectEvent (OBSERVE) of the tested lots, disposition
  ``conformant`` (pass) or ``non_conformant`` (fail), its readings as sensor reports.

Quantities are in kilograms (UN/CEFACT ``KGM``) or counted pieces. Event ids are CBV 2.0
event hashes (``epcis_hash``), equal to those GS1's reference generator computes.

Pure: takes public trade and rapid-test records, returns dicts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from .epcis_hash import event_hash_id

__all__ = ["EPCIS_CONTEXT", "TRACEPAY_VOCABULARY", "events_for_trade", "harvest_events",
           "rapid_test_event", "epcis_document", "event_hash_id", "party_uri", "class_uri"]

#: The versioned context: a partner's tools (GS1's hash generator among them) ship this
#: exact document, so reading our events needs no network.
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: Namespace of our extension fields (``tracepay:productionPlace``, ``tracepay:inspector``).
TRACEPAY_VOCABULARY = "urn:tracepay:voc:"
NAMESPACES = {"tracepay": TRACEPAY_VOCABULARY}
_NUMBER = re.compile(r"^[+-]?\d{1,15}(\.\d{1,15})?$")

GtinOf = Callable[[str], "str | None"]


def party_uri(merchant_id: str) -> str:
    return f"urn:tracepay:party:{quote(merchant_id, safe='')}"


def class_uri(product: str, lot_id: str, gtin: str | None) -> str:
    """A lot of a product: GS1 Digital Link when there is a GTIN, a tracepay URN otherwise."""
    if gtin:
        return f"https://id.gs1.org/01/{gtin}/10/{quote(lot_id, safe='')}"
    return f"urn:tracepay:lot:{quote(product, safe='')}:{quote(lot_id, safe='')}"


def _time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _kg(grams: int) -> Decimal:
    return (Decimal(grams) / 1000).normalize()


def _quantity(line: Mapping[str, Any], gtin_of: GtinOf) -> dict[str, Any]:
    element: dict[str, Any] = {
        "epcClass": class_uri(line["product"], line["lot_id"], gtin_of(line["product"]))}
    if line["measure"] == "g":
        element["quantity"] = float(_kg(line["amount"]))
        element["uom"] = "KGM"
    else:
        element["quantity"] = line["amount"]
    return element


def _with_id(event: dict[str, Any]) -> dict[str, Any]:
    event["eventID"] = event_hash_id(event, NAMESPACES)
    return event


def events_for_trade(record: Mapping[str, Any], gtin_of: GtinOf = lambda _code: None
                     ) -> list[dict[str, Any]]:
    """Shipping (and, for a business buyer, receiving) events of one public trade record."""
    seller = party_uri(record["seller"]["merchant_id"])
    buyer = record["buyer"].get("merchant_id")
    common = {
        "type": "TransactionEvent",
        "eventTime": _time(record["sold_at_ms"]),
        "eventTimeZoneOffset": "+00:00",
        "bizTransactionList": [{"type": "inv",
                                "bizTransaction": f"urn:tracepay:trade:{record['trade_id']}"}],
        "quantityList": [_quantity(line, gtin_of) for line in record["lines"]],
        "action": "ADD",
        "sourceList": [{"type": "owning_party", "source": seller}],
    }
    if buyer:
        common["destinationList"] = [{"type": "owning_party", "destination": party_uri(buyer)}]
    events = [{**common, "bizStep": "shipping", "disposition": "in_transit",
               "readPoint": {"id": seller}}]
    if buyer:
        events.append({**common, "action": "OBSERVE", "bizStep": "receiving",
                       "disposition": "in_progress", "readPoint": {"id": party_uri(buyer)},
                       "eventTime": _time(record["confirmed_at_ms"])})
    return [_with_id(event) for event in events]


def harvest_events(record: Mapping[str, Any], gtin_of: GtinOf = lambda _code: None
                   ) -> list[dict[str, Any]]:
    """Commissioning events of a production base's lots (none for other sellers).

    The ledger knows a harvest from the first sale of its lot, so the event is at that sale,
    at the farm, for the quantity sold.
    """
    if record["seller"].get("org") != "production_base":
        return []
    events = []
    for line in record["lines"]:
        ilmd = {"cbvmda:lotNumber": line.get("lot") or line["lot_id"]}
        if line.get("origin") and line["origin"].strip():
            ilmd["tracepay:productionPlace"] = line["origin"]
        events.append(_with_id({
            "type": "ObjectEvent", "eventTime": _time(record["sold_at_ms"]),
            "eventTimeZoneOffset": "+00:00", "quantityList": [_quantity(line, gtin_of)],
            "action": "ADD", "bizStep": "commissioning", "disposition": "active",
            "readPoint": {"id": party_uri(record["seller"]["merchant_id"])}, "ilmd": ilmd}))
    return events


def _sensor_report(name: str, text: str) -> dict[str, Any]:
    report: dict[str, Any] = {"type": f"urn:tracepay:measurement:{quote(name, safe='')}"}
    if _NUMBER.match(text.strip()):
        report["value"] = float(text)
    else:
        report["stringValue"] = text
    return report


def rapid_test_event(test: Mapping[str, Any], epc_classes: Iterable[str]) -> dict[str, Any]:
    """The inspecting event of one rapid test (a ``tracepay.rapid_test/1`` record) of the
    lots whose classes are ``epc_classes``."""
    event: dict[str, Any] = {
        "type": "ObjectEvent", "eventTime": _time(test["tested_at_ms"]),
        "eventTimeZoneOffset": "+00:00",
        "quantityList": [{"epcClass": epc_class} for epc_class in epc_classes],
        "action": "OBSERVE", "bizStep": "inspecting",
        "disposition": "conformant" if test["result"] == "pass" else "non_conformant",
        "bizTransactionList": [{"type": "testres",
                                "bizTransaction": f"urn:tracepay:rapid_test:{test['test_id']}"}],
    }
    values = test.get("values") or {}
    if values:
        event["sensorElementList"] = [{
            "sensorMetadata": {"time": event["eventTime"]},
            "sensorReport": [_sensor_report(name, str(text)) for name, text in values.items()]}]
    for field in ("inspector", "method"):
        if isinstance(test.get(field), str) and test[field].strip():
            event[f"tracepay:{field}"] = test[field]
    return _with_id(event)


def _rapid_test_events(tests: Iterable[Mapping[str, Any]], classes: Mapping[str, str]
                       ) -> list[dict[str, Any]]:
    """One event per test (``tests`` may repeat a test once per lot, as the index answers),
    naming every lot the test covered, so one test is one event id in every document."""
    unique = {test["test_id"]: test for test in tests}
    return [rapid_test_event(test, [classes[lot] for lot in test["lot_ids"] if lot in classes])
            for test in unique.values()]


def epcis_document(records: Iterable[Mapping[str, Any]], *, created_ms: int,
                   gtin_of: GtinOf = lambda _code: None,
                   rapid_tests: Iterable[Mapping[str, Any]] = (),
                   lot_products: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An EPCISDocument: for each record in the order given its harvest and trade events,
    then the ``rapid_tests`` of the records' lots. ``lot_products`` gives the product of
    tested lots outside ``records`` (a test of several lots names them all)."""
    records = list(records)
    events = [event for record in records
              for event in (*harvest_events(record, gtin_of), *events_for_trade(record, gtin_of))]
    products = dict(lot_products or {})
    products.update((line["lot_id"], line["product"])
                    for record in records for line in record["lines"])
    classes = {lot_id: class_uri(product, lot_id, gtin_of(product))
               for lot_id, product in products.items()}
    events += _rapid_test_events(rapid_tests, classes)
    return {"@context": [EPCIS_CONTEXT, dict(NAMESPACES)], "type": "EPCISDocument",
            "schemaVersion": "2.0", "creationDate": _time(created_ms),
            "epcisBody": {"eventList": events}}
