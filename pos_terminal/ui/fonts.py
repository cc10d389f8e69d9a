"""Find a font that can draw Chinese, at run time, on whatever machine the terminal runs.

Kivy's bundled Roboto has no CJK glyphs: Chinese would show as boxes. Debian's
``fonts-wqy-microhei`` or ``fonts-noto-cjk`` provide one; we ask fontconfig first and fall
back to the usual paths. Without any, the screens still work in English and a warning says
which package to install.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

__all__ = ["CJK_FONT_PACKAGES", "KNOWN_CJK_FONTS", "find_cjk_font", "install_default_font"]

log = logging.getLogger(__name__)

CJK_FONT_PACKAGES = ("fonts-wqy-microhei", "fonts-noto-cjk")
KNOWN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


def _fontconfig_match() -> str | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=zh-cn"], check=False,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    # fontconfig answers with *some* font even when none covers Chinese; trust only CJK ones.
    if found and any(mark in found.lower() for mark in ("cjk", "wqy", "uming", "ukai", "hei")):
        return found
    return None


def find_cjk_font(candidates: tuple[str, ...] = KNOWN_CJK_FONTS) -> str | None:
    """Path of an installed font with Chinese glyphs, or None."""
    for path in candidates:
        if Path(path).is_file():
            return path
    return _fontconfig_match()


def install_default_font() -> str | None:
    """Make the CJK font Kivy's default for every label; returns its path or None."""
    path = find_cjk_font()
    if path is None:
        log.warning("no CJK font found: Chinese text will not render. Install one of the "
                    "Debian packages %s", " or ".join(CJK_FONT_PACKAGES))
        return None
    from kivy.core.text import DEFAULT_FONT, LabelBase

    LabelBase.register(DEFAULT_FONT, path)
    log.info("using %s for Chinese and Latin text", path)
    return path
