"""Refuse to run on a broker that ignores the password file the gateway writes for it.

The gateway secures the broker by writing Mosquitto's password and ACL files; a broker
that does not read them (the amqtt fallback, a misconfigured Mosquitto) would let any
phone on the market's Wi-Fi publish sales as any terminal. The check needs no knowledge of
the broker: connect as a user nobody created, and see whether the broker lets it in.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt

__all__ = ["BrokerAdmitsStrangers", "broker_admits_strangers", "check_broker"]


class BrokerAdmitsStrangers(RuntimeError):
    """The broker accepted a user name and password it was never given."""


def broker_admits_strangers(host: str, port: int, timeout_s: float = 5.0) -> bool | None:
    """True when an unknown user is let in, False when refused, None when unreachable."""
    answered = threading.Event()
    outcome: dict[str, bool] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["admitted"] = not reason.is_failure
        answered.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"tracepay-probe-{secrets.token_hex(6)}",
                         protocol=mqtt.MQTTv311)
    client.username_pw_set(f"tracepay-probe-{secrets.token_hex(6)}", secrets.token_hex(16))
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            return None
        return outcome["admitted"]
    finally:
        client.disconnect()
        client.loop_stop()


def check_broker(settings: Mapping[str, Any]) -> bool | None:
    """Raise when the gateway writes password files but the broker admits strangers
    (unless ``insecure_demo``); the probe's answer otherwise (None: not checked)."""
    if not settings.get("mqtt_host") or not settings.get("mosquitto_password_file"):
        return None
    admitted = broker_admits_strangers(settings["mqtt_host"], int(settings["mqtt_port"]))
    if admitted and not settings.get("insecure_demo"):
        raise BrokerAdmitsStrangers(
            f"the MQTT broker at {settings['mqtt_host']}:{settings['mqtt_port']} admits a "
            f"user it was never given: it ignores the password file "
            f"{settings['mosquitto_password_file']}, so anyone could publish sales as any "
            f"terminal. Run Mosquitto with that file, or --insecure-demo for a demo only")
    return admitted
