"""The gateway's settings, declared once as data (name, default, help).

Resolved by ``market_protocol.load_settings``: defaults < ``--config`` TOML file <
``TRACEPAY_GATEWAY_<NAME>`` environment variables < command-line flags. Secrets are marked
so that nothing prints them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from market_protocol.settings import Setting, load_settings, parse_bool

from .trusted_proxies import parse_networks

__all__ = ["GATEWAY_SETTINGS", "load_gateway_settings", "public_view"]


def _url(text: str) -> str:
    text = str(text).strip().rstrip("/")
    if text and not text.startswith(("http://", "https://")):
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text


def parse_networks_text(text: str) -> str:
    """Checked at load time (a typo must not silently trust nobody), kept as text."""
    parse_networks(text)
    return str(text).strip()


#: Instance names: short, and safe in a broker user name and a client id.
INSTANCE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?")


def parse_instance_name(text: str) -> str:
    """Empty (the only gateway) or a lower-case name."""
    text = str(text).strip()
    if text and not INSTANCE_NAME.fullmatch(text):
        raise ValueError(f"{text!r}: instance names are 1-24 lower-case letters, digits "
                         "and inner hyphens")
    return text


GATEWAY_SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address to listen on (loopback only in development)."),
    Setting("port", 8200, "TCP port to listen on.", int),
    Setting("data_dir", "var/gateway", "Directory for the SQLite database and key files."),
    Setting("database_url", "", "Where the gateway keeps its state: empty is SQLite in "
            "data_dir; postgresql://user:password@host:port/db is a PostgreSQL database "
            "(several gateways may share it). Also read from TRACEPAY_DATABASE_URL.",
            secret=True),
    Setting("instance_name", "", "This gateway's name among several on one PostgreSQL "
            "database (e.g. a, b, market-2): its MQTT user and client id become "
            "tracepay-gateway-<name> and it reads sales through a shared subscription, so "
            "each sale is handled by one instance. Empty: the only gateway.",
            parse_instance_name),
    Setting("database_pool_size", 10, "PostgreSQL: connections each gateway process keeps "
            "at most.", int),
    Setting("public_url", "", "Base URL shoppers' phones reach; QR MACs cover it. "
            "Defaults to http://<host>:<port>.", _url),
    Setting("platform_url", "", "Base URL of the sandbox payment platform.", _url),
    Setting("platform_app_id", "tracepay-gateway", "Our app id at the payment platform."),
    Setting("platform_public_key", "", "PEM file of the platform's public key (written at "
            "auto-registration when empty)."),
    Setting("platform_auto_register", True, "Register our app id and public key at the "
            "sandbox platform (POST /sandbox/apps) on start-up.", parse_bool),
    Setting("consumer_url", "", "Consumer app base URL: scan landing hands off there and "
            "the platform returns the shopper to its receipt page.", _url),
    Setting("mqtt_host", "", "MQTT broker host; empty disables the MQTT link."),
    Setting("insecure_demo", False, "Run even on a broker that admits anyone although "
            "password files are configured (the amqtt fallback); every page then says so. "
            "Never in a market.", parse_bool),
    Setting("mqtt_port", 1883, "MQTT broker port.", int),
    Setting("mqtt_username", "", "The gateway's MQTT user name."),
    Setting("mqtt_password", "", "The gateway's MQTT password.", secret=True),
    Setting("mqtt_subscribe_wait_s", 30.0, "At start-up, wait this long for the MQTT link's "
            "sales subscription before serving HTTP.", float),
    Setting("mqtt_bridge_username", "", "The ledger bridge's MQTT user (written to the "
            "Mosquitto files with read access to trades)."),
    Setting("mqtt_bridge_password", "", "Its password.", secret=True),
    Setting("mqtt_public_host", "", "Broker host as terminals see it (defaults to mqtt_host)."),
    Setting("mqtt_public_port", 0, "Broker port as terminals see it (defaults to mqtt_port).",
            int),
    Setting("mosquitto_password_file", "", "Mosquitto password file the gateway writes "
            "(device users); empty disables."),
    Setting("mosquitto_acl_file", "", "Mosquitto ACL file the gateway writes; empty disables."),
    Setting("mosquitto_pid_file", "", "Mosquitto's pid file: SIGHUP makes it re-read the files."),
    Setting("manager_user", "manager", "Manager account created or updated at start-up."),
    Setting("manager_password", "", "Its password; when empty a random one is written to "
            "<data_dir>/manager.password (mode 0600).", secret=True),
    Setting("workers", 1, "HTTP worker processes (granian when > 1, else waitress).", int),
    Setting("threads", 8, "Threads per HTTP worker.", int),
    Setting("qr_lifetime_s", 300, "How long a dynamic QR may be paid after it was issued.", int),
    Setting("qr_clock_skew_s", 60, "How far in the future a QR's issue time may be.", int),
    Setting("rotated_key_grace_s", 86_400, "After a key rotation, sales MACed with the "
            "previous key (made before the rotation, queued offline) are accepted this "
            "long, then refused with a reason.", float),
    Setting("enrolment_code_ttl_s", 900, "Lifetime of a one-time enrolment code.", int),
    Setting("query_after_s", 5, "Ask the channel about a pending order after this long "
            "without a notification.", int),
    Setting("query_interval_s", 5, "Then ask again this often.", int),
    Setting("pay_window_s", 60, "After this long pending (and past the QR's lifetime) the "
            "order is closed at the channel and expired.", int),
    Setting("payer_code_wait_s", 60, "A payer-code charge waiting for the shopper's "
            "password is reversed at the platform after this long.", int),
    Setting("sweep_interval_s", 2.0, "How often the sweeper looks at pending orders and at "
            "refunds whose answer was lost.", float),
    Setting("channel_timeout_s", 10.0, "HTTP timeout of one call to a payment platform; "
            "a refund that times out stays processing until the platform's refund query "
            "settles it.", float),
    Setting("trusted_proxies", "", "Reverse proxies (addresses or networks, comma "
            "separated) whose X-Forwarded-For/-Proto are believed; from anyone else those "
            "headers are ignored. Empty: no proxy is trusted.", parse_networks_text),
    Setting("proxy_hops", 1, "How many trusted proxies stand in a row in front of the "
            "gateway.", int),
    Setting("rate_limit_storage_uri", "", "Where every worker counts rate limits: empty is "
            "a SQLite file in data_dir; or a limits storage URI (redis://, memcached://).",
            secret=True),
    Setting("scan_limit_per_address", "300/second", "Scan landings per client address: a "
            "flood ceiling only (a market's phones share one address). Empty disables."),
    Setting("scan_limit_per_token", "20/minute", "Scans of one QR code (replays, scraping)."),
    Setting("scan_limit_per_device", "120/minute", "Scans of one terminal's genuine codes "
            "(counted after the MAC verified)."),
    Setting("scan_refusals_per_address", "120/minute", "Refused scans (forged, expired, "
            "replayed codes) per client address; past it refused codes get a bare 429, "
            "genuine codes still pass."),
    Setting("claim_limit_per_address", "30/minute", "Enrolment code claims per address."),
    Setting("notify_limit_per_address", "200/second", "Notifications, queries and terminal "
            "refunds per client address."),
    Setting("login_failures_per_address", "30/10minutes", "Failed manager logins per client "
            "address before its logins are refused."),
    Setting("login_failures_per_account_address", "5/minute", "Failed logins of one "
            "account from one address."),
    Setting("login_failures_per_account", "100/hour", "Failed logins of one account from "
            "everywhere; past it only addresses with no failure against it may try."),
    Setting("session_lifetime_s", 8 * 3600, "Manager web session lifetime.", int),
    Setting("auto_reconcile", True, "Reconcile yesterday (UTC) against the platform's "
            "statement once a day, after reconcile_after_s past midnight.", parse_bool),
    Setting("reconcile_after_s", 1800, "Seconds after midnight UTC before the T+1 run.", int),
    Setting("fee_rate_ppm", 6000, "Channel fee in parts per million of the amount (0.6%), "
            "used in settlement when the channel reports none.", int),
    Setting("alipay_app_id", "", "Alipay app id; the Alipay channel is on when set."),
    Setting("alipay_private_key", "", "PEM file of our Alipay RSA private key.", secret=True),
    Setting("alipay_public_key", "", "PEM file of Alipay's RSA public key."),
    Setting("alipay_gateway_url", "", "Alipay's gateway URL.", _url),
    Setting("alipay_product", "wap", "Alipay product: wap (phone browser) or page."),
    Setting("alipay_seller_id", "", "Alipay seller id (optional check on notifications)."),
    Setting("wechatpay_mch_id", "", "WeChat Pay merchant id; the channel is on when set."),
    Setting("wechatpay_app_id", "", "WeChat Pay app id."),
    Setting("wechatpay_private_key", "", "PEM file of our WeChat Pay merchant private key.",
            secret=True),
    Setting("wechatpay_serial_no", "", "Serial number of our WeChat Pay merchant certificate."),
    Setting("wechatpay_api_v3_key", "", "WeChat Pay API v3 key (notification decryption).",
            secret=True),
    Setting("wechatpay_platform_public_key", "", "PEM file of WeChat Pay's platform key."),
    Setting("wechatpay_platform_serial_no", "", "Serial number of WeChat Pay's platform "
            "certificate (checked on responses when set)."),
    Setting("wechatpay_base_url", "", "WeChat Pay API base URL.", _url),
    Setting("wechatpay_product", "native", "WeChat Pay product: native, jsapi or h5."),
)

_SECRETS = {setting.name for setting in GATEWAY_SETTINGS if setting.secret}


def load_gateway_settings(config_file: str | None = None,
                          overrides: Mapping[str, Any] | None = None,
                          environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Resolve every gateway setting and fill the defaults that depend on others."""
    settings = load_settings(GATEWAY_SETTINGS, "gateway", config_file=config_file,
                             overrides=overrides, environ=environ)
    if not settings["public_url"]:
        settings["public_url"] = f"http://{settings['host']}:{settings['port']}"
    if not settings["database_url"]:
        env = os.environ if environ is None else environ
        settings["database_url"] = env.get("TRACEPAY_DATABASE_URL", "")
    if settings["instance_name"] and not settings["mqtt_username"]:
        settings["mqtt_username"] = f"tracepay-gateway-{settings['instance_name']}"
    settings["mqtt_public_host"] = settings["mqtt_public_host"] or settings["mqtt_host"]
    settings["mqtt_public_port"] = settings["mqtt_public_port"] or settings["mqtt_port"]
    return settings


def public_view(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings safe to log or show: secrets replaced by a marker."""
    return {name: ("***" if name in _SECRETS and value else value)
            for name, value in settings.items()}
