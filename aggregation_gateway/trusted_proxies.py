"""The client's address behind a reverse proxy, believed only from proxies we trust.

werkzeug's ``ProxyFix`` trusts the last ``hops`` entries of ``X-Forwarded-For`` from
whoever sends them; this wrapper applies it only when the direct peer is in
``trusted_proxies`` (addresses or networks), and strips the forwarded headers from
everyone else, so a phone cannot choose the address its limits are counted under.
Off (no trusted proxies) by default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

__all__ = ["TrustedProxies", "parse_networks"]

_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
              "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX", "HTTP_FORWARDED")


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``"10.0.0.0/8, 192.0.2.7"`` as networks; a clear error for anything else."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in str(text).split(",") if part.strip()]


class TrustedProxies:
    """WSGI middleware; ``hops`` proxies in a row, the last one in ``networks``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], networks: list[Any],
                 hops: int = 1) -> None:
        self.app = app
        self.networks = networks
        self.proxied = ProxyFix(app, x_for=hops, x_proto=hops, x_host=0, x_port=0,
                                x_prefix=0)

    def _trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if self.networks and self._trusted(environ.get("REMOTE_ADDR")):
            return self.proxied(environ, start_response)
        for name in _FORWARDED:
            environ.pop(name, None)
        return self.app(environ, start_response)
