"""Enrol a terminal without a gateway: for tests, benchmarks and the UI's own tests.

It writes exactly what a gateway's claim answer would contain (docs/protocol.md §1), with
the device key derived the way the gateway derives it, so a gateway holding the same
master key accepts this terminal's QR codes and MACs.
"""

from __future__ import annotations

import os
from typing import Any

from market_protocol import derive_device_key, mqtt_password

from .provisioning import TerminalConfig, save_enrolment

__all__ = ["TEST_MASTER_KEY", "claim_answer", "enrol_offline"]

TEST_MASTER_KEY = b"tracepay-test-master-key-0123456789"


def claim_answer(device_id: str, *, master_key: bytes = TEST_MASTER_KEY, key_version: int = 1,
                 gateway_url: str = "http://127.0.0.1:9", mqtt_host: str = "127.0.0.1",
                 mqtt_port: int = 1883, merchant_id: str = "m-test",
                 merchant_name: str = "Test stall") -> dict[str, Any]:
    key = derive_device_key(master_key, device_id, key_version)
    return {
        "device_id": device_id, "key_version": key_version, "device_key": key.hex(),
        "gateway_url": gateway_url,
        "mqtt": {"host": mqtt_host, "port": mqtt_port, "username": f"terminal-{device_id}",
                 "password": mqtt_password(key)},
        "merchant": {"merchant_id": merchant_id, "name": merchant_name, "org": "retail_market"},
    }


def enrol_offline(data_dir: str | os.PathLike[str], device_id: str = "T-TEST-1",
                  **options: Any) -> TerminalConfig:
    return save_enrolment(data_dir, claim_answer(device_id, **options))
