"""The bridge's settings, declared once: defaults < ``--config`` TOML < environment
(``TRACEPAY_BRIDGE_<NAME>``) < command-line flags."""

from __future__ import annotations

from market_protocol.settings import Setting, parse_bool

__all__ = ["SETTINGS", "SERVICE", "ORDERINGS"]

SERVICE = "bridge"

ORDERINGS = ("solo", "jetstream")


def _ordering(text: str) -> str:
    if text not in ORDERINGS:
        raise ValueError(f"ordering must be one of {', '.join(ORDERINGS)}, not {text!r}")
    return text


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address the HTTP API listens on."),
    Setting("port", 8300, "Port of the HTTP API.", int),
    Setting("data_dir", "var/bridge", "Directory of the ledger nodes and the bridge index."),
    Setting("mqtt_host", None, "MQTT broker host; without it the bridge takes trades over "
            "HTTP only."),
    Setting("mqtt_port", 1883, "MQTT broker port.", int),
    Setting("mqtt_username", None, "MQTT user name."),
    Setting("mqtt_password", None, "MQTT password.", secret=True),
    Setting("gateway_url", None, "Gateway base URL; its public key is fetched from "
            "GET <gateway>/v1/keys at start, with retries."),
    Setting("gateway_public_key", None, "Path of the gateway's PEM public key (instead of "
            "fetching it)."),
    Setting("gateway_key_timeout_s", 60.0, "How long to keep trying to fetch the gateway's "
            "key.", float),
    Setting("workers", 1, "HTTP worker processes.", int),
    Setting("threads", 8, "HTTP threads per worker.", int),
    Setting("block_max", 500, "Entries per block at most.", int),
    Setting("block_timeout_s", 0.2, "Cut a block when its oldest entry waited this long.",
            float),
    Setting("public_url", "https://trace.example.invalid", "Public base URL printed in "
            "GS1 Digital Link lot URLs."),
    Setting("admin_token", None, "Bearer token required by the registration, catalogue and "
            "rapid-test endpoints (none: open, for loopback set-ups).", secret=True),
    Setting("trades_token", None, "Bearer token required by POST /v1/trades (none: open). "
            "Every trade that fails the contract becomes a ledger entry, so where the API is "
            "reachable by others this keeps strangers from filling the ledger.", secret=True),
    Setting("enrol_unknown_devices", True, "Register a device from its first gateway-signed "
            "trade; off: trades from devices not enrolled through the admin API are "
            "rejected.", parse_bool),
    Setting("ordering", "solo", "solo: the in-process ledger under data_dir; jetstream: "
            "publish to the LEDGER stream of a NATS cluster, read from the nodes.",
            _ordering),
    Setting("nats", None, "NATS server URLs, comma-separated (jetstream ordering)."),
    Setting("nats_user", "bridge", "NATS user of the bridge."),
    Setting("nats_password_file", None, "File holding the NATS user's password."),
    Setting("nats_bridge_id", "market", "This bridge's subject: ledger.tx.<id>."),
    Setting("nats_replicas", 3, "Replicas of the LEDGER stream if the bridge creates it.",
            int),
    Setting("nats_ack_timeout_s", 5.0, "How long one publish waits for JetStream's ack "
            "before it is retried.", float),
    Setting("nats_tls_ca", None, "CA file the NATS servers' certificates are checked "
            "against; set it for tls:// servers."),
    Setting("nats_tls_cert", None, "Client certificate for NATS servers that verify "
            "clients (mutual TLS)."),
    Setting("nats_tls_key", None, "Key of that client certificate."),
    Setting("nodes", None, "Ledger node read APIs, comma-separated (jetstream ordering; "
            "reads fail over between them)."),
)
