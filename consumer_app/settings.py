"""The consumer app's settings, declared once so the CLI, the docs and the tests agree."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from market_protocol.settings import Setting

__all__ = ["SETTINGS", "SERVICE"]

SERVICE = "consumer"


def _url(value: str) -> str:
    """Base URLs are stored without a trailing slash so paths can be appended safely."""
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return text


def _positive_float(value: str | float) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be > 0")
    return number


def _zone(value: str | ZoneInfo) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. "
                         "Asia/Shanghai)") from exc


def _lang(value: str) -> str:
    if value not in ("zh", "en"):
        raise ValueError("must be zh or en")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address to listen on."),
    Setting("port", 8400, "TCP port to listen on.", int),
    Setting("gateway_url", "http://127.0.0.1:8100",
            "Aggregation gateway base URL (payments: GET /v1/payments/<id>).", _url),
    Setting("bridge_url", "http://127.0.0.1:8300",
            "Ledger bridge base URL (trace, keys and stall stock).", _url),
    Setting("public_url", "",
            "This app's own public base URL, printed in stall and receipt QR codes; "
            "empty means the URL the request came in on."),
    Setting("upstream_timeout", 5.0,
            "Seconds to wait for the gateway or the bridge before showing a retry page.",
            _positive_float),
    Setting("default_lang", "zh", "Language when neither ?lang= nor Accept-Language decides "
            "(zh or en).", _lang),
    Setting("timezone", "Asia/Shanghai", "Market time zone in which dates are shown.", _zone),
    Setting("ledger_keys_file", "",
            "The ledger's trust file (`tracepay ledger trust`, or `tracepay ledger "
            "node-trust` for organisation nodes; or JSON {signer: raw Ed25519 key, "
            "base64url}): the only keys the trace page verifies against. "
            "Empty: the page checks nothing and says so (the bridge's own keys are never "
            "trusted)."),
    Setting("workers", 1, "WSGI worker processes (granian when > 1, else waitress).", int),
)
