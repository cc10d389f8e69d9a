"""First-run enrolment screen, without Kivy: two fields, an on-screen keyboard, scans.

The vendor types the manager's code on the keyboard (and the gateway's address, which a
bare code does not carry) or scans the claim URL, which carries both. Claiming is network
I/O and may take seconds, so it is split out (``claim``) for the shell to run off the UI
thread; everything else is one user action per method and can be tested without a window.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..provisioning import (
    ProvisioningError,
    TerminalConfig,
    claim_enrolment,
    parse_enrolment_input,
    save_enrolment,
)
from .messages import Notice

__all__ = ["EnrolmentModel", "EnrolOutcome", "Field", "KEYBOARD_ROWS", "classify_failure"]

#: The on-screen keyboard: the gateway's code alphabet, digits, and what an address needs.
KEYBOARD_ROWS: tuple[tuple[str, ...], ...] = (
    tuple("1234567890"),
    tuple("QWERTYUIOP"),
    tuple("ASDFGHJKL-"),
    tuple("ZXCVBNM.:/"),
)
_LIMITS = {"code": 200, "gateway": 200}  # a scanned claim URL lands in the code field
_STATUS = re.compile(r"\((\d{3})\)")


class Field:
    CODE = "code"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class EnrolOutcome:
    """What a claim attempt ended in: the stored config, or a notice saying why not."""

    config: TerminalConfig | None
    notice: Notice | None


def classify_failure(exc: ProvisioningError) -> Notice:
    """Map a failed claim to words a vendor can act on (the detail stays in the reason)."""
    message = str(exc)
    if isinstance(exc.__cause__, OSError) or message.startswith("cannot reach"):
        return Notice("enrol_unreachable", (), True)
    match = _STATUS.search(message)
    status = int(match.group(1)) if match else None
    if status == 404:
        return Notice("enrol_unknown_code", (), True)
    if status == 410 and "expired" in message:
        return Notice("enrol_code_expired", (), True)
    if status == 410:
        return Notice("enrol_code_used", (), True)
    if status == 429:
        return Notice("enrol_too_many", (), True)
    return Notice("enrol_refused", (("reason", message),), True)


class EnrolmentModel:
    """State of the enrolment screen. ``config`` is set once the terminal is enrolled."""

    def __init__(self, data_dir: str | os.PathLike[str], *, gateway_url: str = "",
                 claim: Callable[[str, str], dict[str, Any]] = claim_enrolment,
                 save: Callable[[Path, dict[str, Any]], TerminalConfig] = save_enrolment,
                 lang: str = "zh") -> None:
        self.data_dir = Path(data_dir)
        self.code = ""
        self.gateway = gateway_url or ""
        self.field = Field.CODE
        self.lang = lang
        self.notice: Notice | None = Notice("enrol_hint")
        self.busy = False
        self.config: TerminalConfig | None = None
        self._claim = claim
        self._save = save

    # -- typing --------------------------------------------------------------------------
    def select_field(self, field: str) -> None:
        if field not in (Field.CODE, Field.GATEWAY):
            raise ValueError(f"no field {field!r}")
        self.field = field

    def press(self, key: str) -> None:
        """One on-screen key: a character, ``back`` or ``clear`` for the active field."""
        value = getattr(self, self.field)
        if key == "back":
            value = value[:-1]
        elif key == "clear":
            value = ""
        elif len(key) == 1 and key.isprintable() and not key.isspace():
            if len(value) >= _LIMITS[self.field]:
                self.notice = Notice("enrol_too_long", (), True)
                return
            value += key  # a bare code is upper-cased when claimed; a URL keeps its case
        else:
            raise ValueError(f"not a key: {key!r}")
        setattr(self, self.field, value)
        if self.notice and self.notice.error:
            self.notice = None

    def scanned(self, text: str) -> None:
        """A whole scan (keyboard wedge line or serial reader line): the claim URL or a code.

        A claim URL fills both fields; a bare code fills the code field. Either way the
        claim starts only when the shell calls ``begin``/``claim`` (a scan ends with Enter).
        """
        text = (text or "").strip()
        if not text:
            return
        try:
            gateway, code = parse_enrolment_input(text, None)
        except ProvisioningError:
            self.code, self.field = text.upper()[:_LIMITS["code"]], Field.CODE
        else:
            self.gateway, self.code = gateway, code
        self.notice = None

    # -- claiming ------------------------------------------------------------------------
    def begin(self) -> tuple[str, str] | None:
        """``(gateway_url, code)`` to claim, or None with a notice saying what is missing."""
        if self.busy or self.config is not None:
            return None
        code = self.code.strip()
        if not code:
            self.notice = Notice("enrol_need_code", (), True)
            return None
        gateway = self.gateway.strip()
        if gateway and "://" not in gateway:
            gateway = "http://" + gateway  # typed on a stall's keypad without the scheme
        if "://" not in code and not gateway:
            self.notice = Notice("enrol_need_gateway", (), True)
            self.field = Field.GATEWAY
            return None
        try:
            target = parse_enrolment_input(code if "://" in code else code.upper(),
                                           gateway or None)
        except ProvisioningError:
            self.notice = Notice("enrol_bad_code", (), True)
            return None
        if not re.match(r"^https?://[^\s/]+", target[0]):
            self.notice = Notice("enrol_bad_gateway", (), True)
            self.field = Field.GATEWAY
            return None
        self.busy = True
        self.notice = Notice("enrol_claiming")
        return target

    def claim(self, gateway_url: str, code: str) -> EnrolOutcome:
        """Claim and store (key file 0600); safe to run off the UI thread, touches no state."""
        try:
            config = self._save(self.data_dir, self._claim(gateway_url, code))
        except ProvisioningError as exc:
            return EnrolOutcome(None, classify_failure(exc))
        return EnrolOutcome(config, Notice("enrol_done", (("device", config.device_id),)))

    def finish(self, outcome: EnrolOutcome) -> TerminalConfig | None:
        self.busy = False
        self.notice = outcome.notice
        if outcome.config is not None:
            self.config = outcome.config
            self.code = ""  # a used code is of no further interest on screen
        return self.config

    def submit(self) -> TerminalConfig | None:
        """``begin``, ``claim`` and ``finish`` in one go (tests, and a patient caller)."""
        target = self.begin()
        if target is None:
            return None
        return self.finish(self.claim(*target))

    def notice_text(self) -> str:
        return self.notice.render(self.lang) if self.notice else ""
