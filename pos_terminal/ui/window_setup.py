"""Kivy's window settings, applied before Kivy creates the window (it reads them once).

Both processes (vendor screen, customer display) call ``configure_window`` first thing, so
the settings live in one place: size and position, no Kivy command-line parsing (our CLI
owns argv), no multitouch emulation dots from the mouse, the CJK font.
"""

from __future__ import annotations

import os
import re

__all__ = ["parse_geometry", "configure_window"]

_GEOMETRY = re.compile(r"^(\d{2,5})x(\d{2,5})(?:\+(\d{1,5})\+(\d{1,5}))?$")


def parse_geometry(geometry: str) -> tuple[int, int, int | None, int | None]:
    """``'800x600+1024+0'`` -> ``(800, 600, 1024, 0)``; position optional."""
    match = _GEOMETRY.match(geometry.strip())
    if not match:
        raise ValueError(f"window geometry {geometry!r}: expected WIDTHxHEIGHT[+LEFT+TOP]")
    width, height, left, top = match.groups()
    return int(width), int(height), (int(left) if left else None), (int(top) if top else None)


def configure_window(geometry: str | None = None, *, fullscreen: bool = False) -> bool:
    """Set Kivy's window config; returns whether a CJK font was installed."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "0")
    from kivy.config import Config

    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0")
    if geometry:
        width, height, left, top = parse_geometry(geometry)
        Config.set("graphics", "width", str(width))
        Config.set("graphics", "height", str(height))
        if left is not None:
            Config.set("graphics", "position", "custom")
            Config.set("graphics", "left", str(left))
            Config.set("graphics", "top", str(top))
    if fullscreen:
        Config.set("graphics", "fullscreen", "auto")
    from .fonts import install_default_font

    return install_default_font() is not None
