"""Response headers that make "no external requests" a rule the browser enforces.

The Content-Security-Policy allows scripts, styles, images and connections from this
origin only (plus the one inline script, by hash, and inline styles), so a page that tried
to load anything from elsewhere -- a CDN font, an analytics tag, an injected script -- fails
in the shopper's browser instead of leaking the trace code.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

from flask import Flask, Response

__all__ = ["install_security_headers", "content_security_policy"]


def _script_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(inline_scripts: Iterable[str] = ()) -> str:
    scripts = " ".join(["'self'", *(_script_hash(s) for s in inline_scripts)])
    return "; ".join([
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "media-src 'self' blob:",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        # The Pay button leaves for the platform's checkout: a navigation, not a request.
        "form-action 'self'",
    ])


def install_security_headers(app: Flask, *, inline_scripts: Iterable[str] = ()) -> None:
    policy = content_security_policy(inline_scripts)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Trace codes and payment ids are in our URLs: never hand them to another site.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
