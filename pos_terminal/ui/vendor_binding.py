"""The enrolled terminal and its ring-up model, as the vendor screen's parts reach them.

A base of ``VendorApp`` and of its mixins. An app started without an enrolment has
neither until the enrolment screen attaches one; only that screen is shown meanwhile, so a
ring-up, day or refund action that reaches for them then is a bug. ``terminal`` and
``model`` say so at once instead of failing later on ``None``; ``attached`` and
``bound_terminal`` are for the code that runs either way.
"""

from __future__ import annotations

from ..terminal import Terminal
from .vendor_model import VendorScreenModel

__all__ = ["TerminalBinding"]


class TerminalBinding:
    """The terminal and the ring-up model; ``VendorApp._attach`` sets both."""

    _terminal: Terminal | None = None
    _model: VendorScreenModel | None = None

    @property
    def attached(self) -> bool:
        """Whether an enrolled terminal, and so the ring-up model, is there."""
        return self._model is not None

    @property
    def bound_terminal(self) -> Terminal | None:
        """The terminal, or None before enrolment (for start-up and shutdown)."""
        return self._terminal

    @property
    def terminal(self) -> Terminal:
        if self._terminal is None:
            raise RuntimeError("no terminal is attached yet: enrol this device first "
                               "(only the enrolment screen works before that)")
        return self._terminal

    @property
    def model(self) -> VendorScreenModel:
        if self._model is None:
            raise RuntimeError("no ring-up model yet: the terminal is not attached "
                               "(only the enrolment screen works before enrolment)")
        return self._model
