"""What the customer display shows, as a pure state machine fed by the vendor screen.

The display is a separate process; everything it knows arrives as small JSON-able messages
(``display_messages``). Keeping the phase logic here, with the clock passed in, lets the
rules be tested without a window: a late result for an earlier sale must never turn the
current QR into "Paid", and a QR past its lifetime must stop being shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .strings import LANGUAGES

__all__ = ["Phase", "DisplayLine", "DisplayState", "CustomerDisplayModel", "DisplayMessageError",
           "FINAL_PHASES"]


class Phase:
    IDLE = "idle"
    ITEMS = "items"
    QR = "qr"
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


FINAL_PHASES = (Phase.PAID, Phase.FAILED, Phase.EXPIRED, Phase.CANCELLED)
_RESULT_PHASES = {"paid": Phase.PAID, "failed": Phase.FAILED, "expired": Phase.EXPIRED}


class DisplayMessageError(ValueError):
    """A message from the vendor screen that the display cannot use."""


@dataclass(frozen=True, slots=True)
class DisplayLine:
    name: str
    detail: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class DisplayState:
    phase: str = Phase.IDLE
    lang: str = "zh"
    lines: tuple[DisplayLine, ...] = ()
    total_fen: int = 0
    sale_id: str | None = None
    qr_url: str | None = None
    trace_code: str | None = None
    expires_at_ms: int | None = None
    since_ms: int = 0

    def seconds_left(self, now_ms: int) -> int | None:
        if self.phase != Phase.QR or self.expires_at_ms is None:
            return None
        return max(0, (self.expires_at_ms - now_ms + 999) // 1000)


def _require(message: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = message.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DisplayMessageError(f"{message.get('type')!r} message needs {name!r} "
                                  f"of type {kind}, got {value!r}")
    return value


def _lines(message: dict[str, Any]) -> tuple[DisplayLine, ...]:
    raw = _require(message, "lines", list)
    try:
        return tuple(DisplayLine(str(line["name"]), str(line["detail"]), int(line["amount_fen"]))
                     for line in raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise DisplayMessageError(f"bad cart line in {message.get('type')!r} message") from exc


@dataclass
class CustomerDisplayModel:
    """Applies messages and clock ticks; ``state`` is what the window draws.

    ``linger_ms``: how long a final phase (paid, failed, ...) stays before going idle.
    """

    linger_ms: int = 8_000
    state: DisplayState = field(default_factory=DisplayState)

    def apply(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        if not isinstance(message, dict):
            raise DisplayMessageError("a display message must be a JSON object")
        kind = message.get("type")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            raise DisplayMessageError(f"unknown display message type {kind!r}")
        self.state = handler(message, now_ms)
        return self.state

    def tick(self, now_ms: int) -> DisplayState:
        """Expire a QR past its lifetime; return a final phase to idle after ``linger_ms``."""
        state = self.state
        if state.phase == Phase.QR and state.expires_at_ms is not None \
                and now_ms >= state.expires_at_ms:
            self.state = replace(state, phase=Phase.EXPIRED, since_ms=now_ms)
        elif state.phase in FINAL_PHASES and now_ms - state.since_ms >= self.linger_ms:
            self.state = DisplayState(lang=state.lang, since_ms=now_ms)
        return self.state

    def _on_lang(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        lang = _require(message, "lang", str)
        if lang not in LANGUAGES:
            raise DisplayMessageError(f"unknown language {lang!r}")
        return replace(self.state, lang=lang)

    def _on_idle(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        return DisplayState(lang=self.state.lang, since_ms=now_ms)

    def _on_cart(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        lines, total = _lines(message), _require(message, "total_fen", int)
        if self.state.phase == Phase.QR:
            return self.state  # the QR stays until paid, cancelled or expired
        if not lines:
            return DisplayState(lang=self.state.lang, since_ms=now_ms)
        return DisplayState(phase=Phase.ITEMS, lang=self.state.lang, lines=lines,
                            total_fen=total, since_ms=now_ms)

    def _on_qr(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        url = _require(message, "url", str)
        if not url.startswith(("http://", "https://", "000201")):
            raise DisplayMessageError("the QR payload is neither a URL nor an EMVCo payload")
        return DisplayState(phase=Phase.QR, lang=self.state.lang, lines=_lines(message),
                            total_fen=_require(message, "total_fen", int),
                            sale_id=_require(message, "sale_id", str), qr_url=url,
                            trace_code=message.get("trace_code"),
                            expires_at_ms=_require(message, "expires_at_ms", int),
                            since_ms=now_ms)

    def _on_result(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        status = _require(message, "status", str)
        if status not in _RESULT_PHASES:
            raise DisplayMessageError(f"unknown result status {status!r}")
        state = self.state
        if _require(message, "sale_id", str) != state.sale_id:
            return state  # a late result for an earlier sale
        if status == "paid":
            return replace(state, phase=Phase.PAID, since_ms=now_ms)  # money taken wins
        if state.phase != Phase.QR:
            return state
        return replace(state, phase=_RESULT_PHASES[status], since_ms=now_ms)

    def _on_cancel(self, message: dict[str, Any], now_ms: int) -> DisplayState:
        state = self.state
        if _require(message, "sale_id", str) != state.sale_id or state.phase != Phase.QR:
            return state
        return replace(state, phase=Phase.CANCELLED, since_ms=now_ms)
