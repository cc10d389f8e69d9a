"""The stall's own settings for printing, voice and tender: ``stall.json`` in the data dir.

Kept apart from ``terminal.json`` (the enrolment, written by the gateway's answer and
holding the MQTT password) so the vendor or a service engineer can edit it by hand. Every
setting is declared once below, with its default and meaning; the docs list each one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STALL_FILE", "STALL_SETTINGS", "StallSettings", "load_stall_settings",
           "save_stall_settings", "StallSettingsError"]

STALL_FILE = "stall.json"

#: name -> (default, meaning). The one place a stall setting is declared.
STALL_SETTINGS: dict[str, tuple[Any, str]] = {
    "printer": ("none", "receipt printer: none, usb:VID:PID, serial:/dev/ttyS0[:BAUD], "
                        "network:HOST[:PORT] (port 9100 by default)"),
    "paper_mm": (80, "receipt paper width: 80 (48 characters a line) or 58 (32)"),
    "trace_url": ("", "the consumer app's address: receipts carry <trace_url>/trace/<code> "
                      "as a QR (just the trace code when empty)"),
    "print_receipts": (False, "print a receipt for every paid sale without being asked"),
    "voice_muted": (False, "no spoken announcement of payments"),
    "voice_volume": (100, "announcement volume, 0..200 percent of espeak-ng's normal"),
    "rounding": ("none", "抹零: round a total down to the jiao (jiao), the yuan (yuan) or not"),
    "scale": ("", "the scale when --scale is not given: mettler:/dev/ttyUSB0, "
                  "dahua:/dev/ttyUSB0[:BAUD[:PARITY]], aclas:…, simulated"),
}


class StallSettingsError(ValueError):
    """A stall setting that cannot be used; says which and what is allowed."""


@dataclass(frozen=True)
class StallSettings:
    printer: str = "none"
    paper_mm: int = 80
    trace_url: str = ""
    print_receipts: bool = False
    voice_muted: bool = False
    voice_volume: int = 100
    rounding: str = "none"
    scale: str = ""

    def __post_init__(self) -> None:
        if self.paper_mm not in (58, 80):
            raise StallSettingsError(f"paper_mm must be 58 or 80, not {self.paper_mm!r}")
        if isinstance(self.voice_volume, bool) or not isinstance(self.voice_volume, int) \
                or not 0 <= self.voice_volume <= 200:
            raise StallSettingsError(f"voice_volume must be 0..200, not {self.voice_volume!r}")
        if self.rounding not in ("none", "jiao", "yuan"):
            raise StallSettingsError(f"rounding must be none, jiao or yuan, not "
                                     f"{self.rounding!r}")
        if not isinstance(self.printer, str) or not self.printer:
            raise StallSettingsError("printer must be none, usb:…, serial:… or network:…")


def load_stall_settings(data_dir: str | os.PathLike[str]) -> StallSettings:
    """The stall's settings; the defaults when ``stall.json`` does not exist."""
    path = Path(data_dir) / STALL_FILE
    if not path.exists():
        return StallSettings()
    try:
        given = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StallSettingsError(f"{path} is not JSON: {exc}") from None
    unknown = sorted(set(given) - set(STALL_SETTINGS))
    if unknown:
        raise StallSettingsError(f"unknown stall setting(s) {unknown} in {path}; known: "
                                 f"{sorted(STALL_SETTINGS)}")
    return StallSettings(**given)


def save_stall_settings(data_dir: str | os.PathLike[str], settings: StallSettings) -> None:
    path = Path(data_dir) / STALL_FILE
    tmp = path.with_name(path.name + ".tmp")
    values = {name: getattr(settings, name) for name in STALL_SETTINGS}
    tmp.write_text(json.dumps(values, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
