"""EPCIS event hash ids (CBV 2.0 §8.9), written the way GS1's reference generator writes them.

A partner de-duplicates and checks events by ``eventID``, so ours must be the id that GS1's
``epcis-event-hash-generator`` (1.9.3) computes for the same JSON-LD event; the tests compare
every exported event with it. The pre-hash string is ``eventType=<type>`` followed by

1. the fields of the canonical property order that the generator walks one by one:
   ``eventTime``, ``eventTimeZoneOffset``, ``epcList``, ``quantityList``, ``action``,
   ``bizStep``, ``disposition``, ``readPoint``, ``bizLocation``, ``sensorElementList``
   (repeated elements sorted, CBV short names expanded to ``https://ref.gs1.org/cbv/`` URIs,
   times in UTC with milliseconds, numbers without trailing zeros);
2. every other field sorted by its text: ``bizTransactionList``, ``destinationList``,
   ``ilmd``, ``sourceList`` and extensions. The generator reaches the three lists here, not
   at their place in the CBV's order, and writes each entry as ``type=<uri><key>=<value>``;
   extension names are written ``{namespace}localName``.

Pure: dicts in, strings out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["CBV", "prehash", "event_hash_id"]

CBV = "https://ref.gs1.org/cbv/"

#: Fields outside the event's content: never hashed.
_NOT_HASHED = {"type", "eventID", "recordTime", "errorDeclaration", "@context"}
#: CBV short names of these fields expand to web vocabulary URIs.
_VOCABULARY = {"bizStep": "BizStep-", "disposition": "Disp-"}
_LIST_VOCABULARY = {"bizTransactionList": ("bizTransaction", "BTT-"),
                    "sourceList": ("source", "SDT-"), "destinationList": ("destination", "SDT-")}
_SENSOR_METADATA = ("time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData",
                    "dataProcessingMethod", "bizRules")
_SENSOR_REPORT = ("type", "exception", "deviceID", "deviceMetadata", "rawData",
                  "dataProcessingMethod", "time", "microorganism", "chemicalSubstance", "value",
                  "component", "stringValue", "booleanValue", "hexBinaryValue", "uriValue",
                  "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue", "uom",
                  "coordinateReferenceSystem")


def _time(text: str) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def _text(value: Any) -> str:
    """A value as the generator writes it: trimmed; anything that reads as a number, shortest."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number == int(number) else str(number)


def _field(name: str, value: Any) -> str:
    if value is None or str(value).strip() == "":
        return ""
    text = _time(str(value)) if "time" in name.lower() and "offset" not in name.lower() \
        else _text(value)
    return f"{name}={text}"


def _quantity_element(element: Mapping[str, Any]) -> str:
    return "quantityElement" + "".join(_field(key, element.get(key))
                                       for key in ("epcClass", "quantity", "uom"))


def _sensor_element(element: Mapping[str, Any]) -> str:
    metadata = element.get("sensorMetadata") or {}
    head = "".join(_field(key, metadata.get(key)) for key in _SENSOR_METADATA)
    reports = sorted("sensorReport" + "".join(_field(key, report.get(key))
                                              for key in _SENSOR_REPORT)
                     for report in element.get("sensorReport", []))
    return "sensorElement" + ("sensorMetadata" + head if head else "") + "".join(reports)


def _ordered(event: Mapping[str, Any]) -> str:
    parts = [_field("eventTime", event["eventTime"]),
             _field("eventTimeZoneOffset", event["eventTimeZoneOffset"])]
    epcs = sorted(_field("epc", epc) for epc in event.get("epcList", []))
    if epcs:
        parts.append("epcList" + "".join(epcs))
    quantities = sorted(_quantity_element(q) for q in event.get("quantityList", []))
    if quantities:
        parts.append("quantityList" + "".join(quantities))
    parts.append(_field("action", event.get("action")))
    for name, prefix in _VOCABULARY.items():
        if name in event:
            parts.append(_field(name, CBV + prefix + event[name]))
    for name in ("readPoint", "bizLocation"):
        if name in event:
            parts.append(name + _field("id", event[name]["id"]))
    sensors = sorted(_sensor_element(e) for e in event.get("sensorElementList", []))
    if sensors:
        parts.append("sensorElementList" + "".join(sensors))
    return "".join(parts)


_ORDERED = {"eventTime", "eventTimeZoneOffset", "epcList", "quantityList", "action", "bizStep",
            "disposition", "readPoint", "bizLocation", "sensorElementList"}


def _extension_name(name: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, local = name.partition(":")
    return f"{{{namespaces[prefix]}}}{local}" if local and prefix in namespaces else name


def _rest(event: Mapping[str, Any], namespaces: Mapping[str, str]) -> str:
    parts = []
    for name, value in event.items():
        if name in _ORDERED or name in _NOT_HASHED:
            continue
        if name in _LIST_VOCABULARY:
            key, prefix = _LIST_VOCABULARY[name]
            entries = sorted(_field("type", CBV + prefix + entry["type"]) + _field(key, entry[key])
                             for entry in value)
            parts.append(name + "".join(entries))
        elif isinstance(value, Mapping):
            parts.append(_extension_name(name, namespaces) + "".join(sorted(
                _field(_extension_name(k, namespaces), v) for k, v in value.items())))
        else:
            parts.append(_field(_extension_name(name, namespaces), value))
    return "".join(sorted(parts))


def prehash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of one JSON-LD event.

    ``namespaces`` maps the prefixes the document's ``@context`` declares (beyond the EPCIS
    context) to their IRIs, for extension fields such as ``tracepay:productionPlace``.
    """
    return f"eventType={event['type']}" + _ordered(event) + _rest(event, namespaces or {})


def event_hash_id(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """``ni:///sha-256;<hex>?ver=CBV2.0`` of the event's pre-hash string."""
    digest = hashlib.sha256(prehash(event, namespaces).encode()).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"
