"""Every word the terminal's screens show, so a language switch is one lookup.

The words live in gettext catalogs (``translations/<lang>/LC_MESSAGES/messages.po``, the
compiled ``.mo`` beside it; see :mod:`service_base.catalogs`), one per language, keyed by
stable message ids; the Chinese catalog shows the English beside each entry for its
translator. Screens never hold literal text: they ask ``text(key, lang)``. A test checks
that every key has every language and that the compiled files are fresh, so a missing
translation fails the build rather than a vendor's day.
"""

from __future__ import annotations

from pathlib import Path

from service_base.catalogs import load_catalog

__all__ = ["LANGUAGES", "STRINGS", "TRANSLATIONS_DIR", "text", "unit_label", "next_language"]

LANGUAGES: tuple[str, ...] = ("zh", "en")

TRANSLATIONS_DIR = Path(__file__).with_name("translations")


def _load_strings() -> dict[str, dict[str, str]]:
    catalogs = {lang: load_catalog(TRANSLATIONS_DIR, lang) for lang in LANGUAGES}
    keys = set().union(*catalogs.values())
    return {key: {lang: catalogs[lang][key] for lang in LANGUAGES if key in catalogs[lang]}
            for key in sorted(keys)}


#: key -> {language: text}, from the compiled catalogs (loaded once, at import).
STRINGS: dict[str, dict[str, str]] = _load_strings()

_UNIT_KEYS = {"kg": "per_kg", "500g": "per_500g", "jin": "per_jin", "g": "per_g",
              "piece": "per_piece"}


def text(key: str, lang: str, **values: object) -> str:
    """The string ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``.

    An unknown key raises KeyError: a typo should fail a test, not show a blank button.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
    template = STRINGS[key][lang]
    return template.format(**values) if values else template


def unit_label(unit: str, lang: str) -> str:
    """``'500g'`` -> ``'/斤'`` (zh) or ``'/500 g'`` (en)."""
    return text(_UNIT_KEYS[unit], lang)


def next_language(lang: str) -> str:
    """The language the toggle switches to from ``lang``."""
    return LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)]
