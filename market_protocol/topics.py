"""MQTT topic names: the one place both ends read them from.

Per-device topics let the broker's ACL confine each terminal to its own sales and results.
"""

from __future__ import annotations

__all__ = ["sales_topic", "results_topic", "SALES_WILDCARD", "TRADES_TOPIC", "device_from_topic"]

PREFIX = "tracepay/v1"
SALES_WILDCARD = f"{PREFIX}/terminals/+/sales"
TRADES_TOPIC = f"{PREFIX}/ledger/trades"


def sales_topic(device_id: str) -> str:
    """Terminal -> gateway: ``tracepay.sale/1`` records, QoS 1."""
    return f"{PREFIX}/terminals/{device_id}/sales"


def results_topic(device_id: str) -> str:
    """Gateway -> terminal: ``tracepay.payment_result/1`` records, QoS 1."""
    return f"{PREFIX}/terminals/{device_id}/results"


def device_from_topic(topic: str) -> str:
    parts = topic.split("/")
    if len(parts) != 5 or parts[:3] != ["tracepay", "v1", "terminals"]:
        raise ValueError(f"not a terminal topic: {topic}")
    return parts[3]
