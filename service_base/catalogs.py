"""Gettext catalogs for the screens and pages: load a compiled one, check it is fresh.

Each part that shows text keeps ``translations/<lang>/LC_MESSAGES/messages.po`` (what
translators edit, with their usual tools) and the ``messages.mo`` compiled from it (what
runs; ``pybabel compile -d <dir>`` rebuilds it). Message ids are stable keys
(``pay_title``), so a template or screen names what it shows, not the English of it.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["load_catalog", "po_messages", "stale_catalogs"]


def load_catalog(directory: Path, lang: str) -> dict[str, str]:
    """The compiled catalog of ``lang`` under ``directory`` as key -> text."""
    translations = Translations.load(str(directory), [lang])
    if not isinstance(translations, Translations):
        raise FileNotFoundError(f"no compiled catalog for {lang!r} in {directory}")
    return {key: text for key, text in translations._catalog.items()
            if isinstance(key, str) and key}


def po_messages(directory: Path, lang: str) -> dict[str, str]:
    """The source catalog of ``lang`` (the .po file) as key -> text: its singular messages
    (the catalogs have no plural forms)."""
    with (directory / lang / "LC_MESSAGES" / "messages.po").open("rb") as file:
        return {message.id: message.string for message in read_po(file)
                if message.id and isinstance(message.id, str)
                and isinstance(message.string, str)}


def stale_catalogs(directory: Path, langs: tuple[str, ...]) -> list[str]:
    """Languages whose .mo is not what their .po compiles to."""
    stale = []
    for lang in langs:
        with (directory / lang / "LC_MESSAGES" / "messages.po").open("rb") as file:
            source = read_po(file)
        compiled = io.BytesIO()
        write_mo(compiled, source)
        compiled.seek(0)
        if Translations(compiled)._catalog != Translations.load(str(directory), [lang])._catalog:
            stale.append(lang)
    return stale
