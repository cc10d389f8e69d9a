"""EPCIS 2.0 JSON-LD export of trades, so other trace systems can take in our chains.

Each trade becomes a TransactionEvent "shipping" from the seller (owning party) to the buyer
and, when the buyer is a registered business, a "receiving" event at the buyer. Quantities
are in kilograms (UN/CEFACT ``KGM``) or counted pieces. Event ids are CBV 2.0 event hashes
(``epcis_hash``), equal to those GS1's reference generator computes.

Pure: takes public trade records, returns dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from .epcis_hash import event_hash_id

__all__ = ["EPCIS_CONTEXT", "events_for_trade", "epcis_document", "event_hash_id",
           "party_uri", "class_uri"]

#: The versioned context: a partner's tools (GS1's hash generator among them) ship this
#: exact document, so reading our events needs no network.
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


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


def _quantities(record: Mapping[str, Any],
                gtin_of: Callable[[str], str | None]) -> list[dict[str, Any]]:
    out = []
    for line in record["lines"]:
        element: dict[str, Any] = {
            "epcClass": class_uri(line["product"], line["lot_id"], gtin_of(line["product"]))}
        if line["measure"] == "g":
            element["quantity"] = float(_kg(line["amount"]))
            element["uom"] = "KGM"
        else:
            element["quantity"] = line["amount"]
        out.append(element)
    return out


def events_for_trade(record: Mapping[str, Any],
                     gtin_of: Callable[[str], str | None] = lambda _code: None
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
        "quantityList": _quantities(record, gtin_of),
        "action": "ADD",
        "sourceList": [{"type": "owning_party", "source": seller}],
    }
    if buyer:
        common["destinationList"] = [{"type": "owning_party", "destination": party_uri(buyer)}]
    shipping = {**common, "bizStep": "shipping", "disposition": "in_transit",
                "readPoint": {"id": seller}}
    events = [shipping]
    if buyer:
        events.append({**common, "action": "OBSERVE", "bizStep": "receiving",
                       "disposition": "in_progress", "readPoint": {"id": party_uri(buyer)},
                       "eventTime": _time(record["confirmed_at_ms"])})
    for event in events:
        event["eventID"] = event_hash_id(event)
    return events


def epcis_document(records: Iterable[Mapping[str, Any]], *, created_ms: int,
                   gtin_of: Callable[[str], str | None] = lambda _code: None) -> dict[str, Any]:
    """An EPCISDocument holding the events of ``records`` in the order given."""
    events = [event for record in records for event in events_for_trade(record, gtin_of)]
    return {"@context": [EPCIS_CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": _time(created_ms), "epcisBody": {"eventList": events}}
