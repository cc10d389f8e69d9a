"""The enrolment screen's actions: typing the one-time code and gateway, and the claim.

A mixin of ``VendorApp`` (the .kv files call ``app.enrol_press`` and friends). The claim
runs off the UI thread, since the gateway may take seconds; once it succeeds the app
attaches the new terminal and swaps the enrolment screen for the day's screens.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kivy.clock import Clock

from ..provisioning import ProvisioningError
from ..terminal import Terminal
from .enrol_model import KEYBOARD_ROWS, EnrolmentModel
from .messages import Notice
from .strings import STRINGS, next_language
from .vendor_binding import TerminalBinding

__all__ = ["EnrolActions"]


def _enrol_key(key: str) -> Any:
    from kivy.factory import Factory

    return Factory.EnrolKey(text=key)



class EnrolActions(TerminalBinding):
    """Enrolment-screen actions; expects the attributes ``VendorApp`` defines."""

    enrol: EnrolmentModel | None
    manager: Any
    t: Any

    if TYPE_CHECKING:
        def refresh(self) -> None: ...
        def _attach(self, terminal: Terminal) -> None: ...
        def _add_day_screens(self) -> None: ...
        def _start_services(self) -> None: ...

    def _draw_enrol_keys(self, grid: Any) -> None:
        for row in KEYBOARD_ROWS:
            for key in row:
                grid.add_widget(_enrol_key(key))

    def enrol_press(self, key: str) -> None:
        if self.enrol is None or self.enrol.busy:
            return
        self.enrol.press(key)
        self.refresh()

    def enrol_select(self, field: str) -> None:
        if self.enrol is not None:
            self.enrol.select_field(field)
            self.refresh()

    def enrol_language(self) -> None:
        if self.enrol is not None:
            self.enrol.lang = next_language(self.enrol.lang)
            self.refresh()

    def enrol_submit(self) -> None:
        """Claim off the UI thread (the gateway may take seconds); the screen stays live."""
        enrol = self.enrol
        if enrol is None:
            return
        target = enrol.begin()
        self.refresh()
        if target is None:
            return

        def claim() -> None:
            outcome = enrol.claim(*target)
            Clock.schedule_once(lambda dt: self._enrol_finished(outcome), 0)
        threading.Thread(target=claim, name="enrol-claim", daemon=True).start()

    def _enrol_finished(self, outcome: Any) -> None:
        enrol = self.enrol
        assert enrol is not None
        config = enrol.finish(outcome)
        self.refresh()
        if config is None:
            return
        try:
            terminal = Terminal.open(enrol.data_dir)
        except (ProvisioningError, OSError, ValueError) as exc:  # stored, yet unreadable
            enrol.config = None
            enrol.notice = Notice("enrol_refused", (("reason", str(exc)),), True)
            self.refresh()
            return
        self._attach(terminal)
        self._add_day_screens()
        self.manager.current = "ring_up"
        self.manager.remove_widget(self.manager.get_screen("enrol"))
        self.enrol = None
        self.model.tell("enrol_done", device=config.device_id)
        self._start_services()
        self.refresh()

    def _refresh_enrol(self, enrol: EnrolmentModel) -> None:
        self.t = {key: table[enrol.lang] for key, table in STRINGS.items()}
        self.enrol_code_text = enrol.code
        self.enrol_gateway_text = enrol.gateway
        self.enrol_field = enrol.field
        self.enrol_notice = enrol.notice_text()
        self.enrol_error = bool(enrol.notice and enrol.notice.error)
        self.enrol_busy = enrol.busy
