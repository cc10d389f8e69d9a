"""Chinese and English text for the shopper pages, and how a request picks its language.

The text lives in gettext catalogs (``translations/<lang>/LC_MESSAGES/messages.po``), one
per language, so translators work in .po files with their usual tools; message ids are
stable keys (``pay_title``), and the Chinese catalog carries the English text beside each
entry for its translator. The compiled ``.mo`` files beside them are what Flask-Babel
loads; ``pybabel compile -d consumer_app/translations`` rebuilds them, and a test fails
when one is stale. A key missing from a catalog raises instead of showing the key to a
shopper.

Order of precedence: ``?lang=`` (the switch link), then the phone's Accept-Language, then the
configured default.
"""

from __future__ import annotations

import functools
from pathlib import Path

from service_base.catalogs import load_catalog

__all__ = ["LANGS", "TRANSLATIONS_DIR", "catalog", "choose_lang", "translate"]

LANGS = ("zh", "en")
TRANSLATIONS_DIR = Path(__file__).with_name("translations")


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """The compiled catalog of ``lang`` as key -> text (the same file Flask-Babel loads)."""
    return load_catalog(TRANSLATIONS_DIR, lang)


def translate(key: str, lang: str) -> str:
    """The text of ``key`` in ``lang`` (zh unless en); KeyError for an unknown key."""
    return catalog("en" if lang == "en" else "zh")[key]



def choose_lang(query_lang: str | None, accept_language: str | None, default: str = "zh") -> str:
    """``?lang=`` wins, then the first Accept-Language range we speak (by q), then default."""
    if query_lang:
        primary = query_lang.strip().lower().split("-")[0]
        if primary in LANGS:
            return primary
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and quality > 0:
            candidate = (-quality, position, primary)
            if best is None or candidate < best:
                best = candidate
    if best is not None:
        return best[2]
    return default if default in LANGS else LANGS[0]
