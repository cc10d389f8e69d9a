"""The consumer app's factory: settings, the upstream reader, i18n and the page blueprint."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, request
from flask_babel import Babel

from market_protocol.money import format_fen
from market_protocol.settings import SettingsError, load_settings

from .i18n import TRANSLATIONS_DIR, choose_lang, translate
from .page_errors import install_page_errors
from .security_headers import install_security_headers
from .settings import SERVICE, SETTINGS
from .trace_view import published_keys
from .upstream import Upstream

__all__ = ["create_app"]

_STATIC = Path(__file__).parent / "static"


def create_app(settings: Mapping[str, Any] | None = None, *,
               config_file: str | os.PathLike[str] | None = None,
               upstream: Upstream | None = None) -> Flask:
    """Build the app. ``settings`` override the config file and the environment."""
    resolved = load_settings(SETTINGS, SERVICE, config_file=config_file, overrides=settings)
    app = Flask(__name__)
    app.config["TRACEPAY"] = resolved
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["tracepay_upstream"] = upstream or Upstream(
        resolved["gateway_url"], resolved["bridge_url"], resolved["upstream_timeout"])
    app.config["PINNED_KEYS"] = _pinned_keys(resolved["ledger_keys_file"])
    # Inlined rather than linked: one request fewer before first paint on a flaky network.
    app.config["INLINE_CSS"] = (_STATIC / "app.css").read_text(encoding="utf-8")
    app.config["INLINE_SW_REGISTER"] = (_STATIC / "sw_register.js").read_text(encoding="utf-8")
    install_security_headers(app, inline_scripts=[app.config["INLINE_SW_REGISTER"]])
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    _install_i18n(app, resolved["default_lang"], resolved["timezone"])
    install_page_errors(app)

    from . import meta, pages, resolver

    app.register_blueprint(pages.blueprint)
    app.register_blueprint(meta.blueprint)
    app.register_blueprint(resolver.blueprint)
    return app


def _install_i18n(app: Flask, default_lang: str, timezone: ZoneInfo) -> None:
    # Flask-Babel loads the gettext catalogs and gives templates ``_()`` and ``ngettext``;
    # ``t(key)`` reads the same catalogs and refuses a key they lack.
    Babel(app, locale_selector=lambda: getattr(g, "lang", default_lang),
          default_translation_directories=str(TRANSLATIONS_DIR), default_locale=default_lang)

    @app.before_request
    def _pick_language() -> None:
        g.lang = choose_lang(request.args.get("lang"), request.headers.get("Accept-Language"),
                             default_lang)

    @app.after_request
    def _vary(response: Response) -> Response:
        response.vary.add("Accept-Language")
        response.vary.add("Accept")
        return response

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        lang = getattr(g, "lang", default_lang)
        return {
            "lang": lang,
            "t": lambda key: translate(key, lang),
            "switch_lang_url": _switch_url("en" if lang == "zh" else "zh"),
            "fen": format_fen,
            "when": lambda epoch_ms, with_time=True: _format_ms(epoch_ms, timezone, with_time),
            "css": app.config["INLINE_CSS"],
            "sw_register": app.config["INLINE_SW_REGISTER"],
        }


def _switch_url(other: str) -> str:
    args = {key: value for key, value in request.args.items() if key != "lang"}
    args["lang"] = other
    return f"{request.path}?{urlencode(args)}"


def _format_ms(epoch_ms: Any, timezone: ZoneInfo, with_time: bool = True) -> str:
    """Records hold epoch ms; a shopper reads market-local wall time."""
    if not isinstance(epoch_ms, int) or isinstance(epoch_ms, bool) or epoch_ms <= 0:
        return ""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).astimezone(timezone)
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def _pinned_keys(path: str) -> dict[str, str] | None:
    """Keys distributed out of band: then a bridge cannot vouch for blocks with keys of its
    own choosing. Misconfiguration fails at start, not on a shopper's phone."""
    if not path:
        return None
    try:
        keys = published_keys(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"consumer setting ledger_keys_file: {exc}") from exc
    if not keys:
        raise SettingsError(f"consumer setting ledger_keys_file: {path} holds no raw "
                            "Ed25519 keys ({signer: base64url})")
    return keys
