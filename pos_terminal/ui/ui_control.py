"""A remote control for UI tests and benchmarks: real touches, screenshots and state.

Off unless ``TRACEPAY_UI_CONTROL`` (a Unix socket path) and ``TRACEPAY_UI_CONTROL_KEY``
(hex authkey) are set. A ``tap`` finds a widget by its ``tap_id`` and feeds a touch down
and, one frame later, a touch up through a Kivy input provider, so the widget sees exactly
the events a finger would cause (``on_touch_down`` → ``on_press`` → ``on_release``);
nothing calls the widget's handlers directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener
from typing import Any

from kivy.base import EventLoop
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.input.motionevent import MotionEvent
from kivy.input.provider import MotionEventProvider
from kivy.uix.widget import Widget

from .environment import CONTROL_ENV, CONTROL_KEY_ENV
from .layout_check import control_geometry

__all__ = ["UIControl", "find_tap_target"]

log = logging.getLogger(__name__)



class InjectedTouch(MotionEvent):
    def depack(self, args: tuple[float, float]) -> None:
        self.sx, self.sy = args
        if not self.profile:
            self.profile.append("pos")
        super().depack(args)


class InjectedTouchProvider(MotionEventProvider):
    """Releases each queued touch one frame after it went down, like a quick finger."""

    def __init__(self) -> None:
        super().__init__("injected", None)
        self._downs: deque[tuple[InjectedTouch, Callable[[int, int], None], float]] = deque()
        self._ups: list[tuple[InjectedTouch, Callable[[int, int], None], int, int]] = []
        self._counter = 0

    def tap(self, sx: float, sy: float, done: Callable[[int, int], None],
            hold_s: float = 0.0) -> None:
        """Queue a tap at normalised window coordinates; ``done(down_ns, up_ns)`` after
        the release has been dispatched (monotonic clock, comparable across processes).
        ``hold_s`` keeps the finger down that long (a long press)."""
        self._counter += 1
        touch = InjectedTouch(self.device, self._counter, (sx, sy), is_touch=True,
                              type_id="touch")
        self._downs.append((touch, done, hold_s))

    def update(self, dispatch_fn: Callable[[str, MotionEvent], None]) -> None:
        now_ns = time.monotonic_ns()
        waiting = []
        for touch, done, down_ns, release_ns in self._ups:
            if now_ns < release_ns:
                waiting.append((touch, done, down_ns, release_ns))
                continue
            up_ns = time.monotonic_ns()
            dispatch_fn("end", touch)
            Clock.schedule_once(lambda dt, d=done, t0=down_ns, t1=up_ns: d(t0, t1), 0)
        self._ups = waiting
        while self._downs:
            touch, done, hold_s = self._downs.popleft()
            down_ns = time.monotonic_ns()
            self._ups.append((touch, done, down_ns, down_ns + int(hold_s * 1e9)))
            dispatch_fn("begin", touch)


def _walk(widget: Widget) -> Iterator[Widget]:
    yield widget
    for child in widget.children:
        yield from _walk(child)


def find_tap_target(root: Widget, tap_id: str) -> Widget:
    """The visible, enabled widget with ``tap_id``; LookupError naming what exists."""
    found = [w for w in _walk(root) if getattr(w, "tap_id", None) == tap_id]
    usable = [w for w in found if not w.disabled and w.opacity > 0]
    if not usable:
        known = sorted({str(w.tap_id) for w in _walk(root) if getattr(w, "tap_id", None)})
        state = "disabled or hidden" if found else "not on screen"
        raise LookupError(f"tap target {tap_id!r} is {state}; on screen: {known}")
    return usable[0]


class UIControl:
    """Serves control requests; ``state`` is the app's own snapshot function."""

    def __init__(self, address: str, authkey: bytes, state: Callable[[], dict[str, Any]],
                 extra_ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
                 ) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # left by a previous run of this window that crashed
        self._listener = Listener(address, family="AF_UNIX", authkey=authkey)
        self._state = state
        self._extra_ops = extra_ops or {}
        self._provider = InjectedTouchProvider()
        EventLoop.add_input_provider(self._provider)
        threading.Thread(target=self._serve, name="ui-control", daemon=True).start()

    @classmethod
    def from_environment(cls, state: Callable[[], dict[str, Any]],
                         extra_ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]
                         | None = None) -> UIControl | None:
        address, key = os.environ.get(CONTROL_ENV), os.environ.get(CONTROL_KEY_ENV)
        if not address or not key:
            return None
        log.info("UI control listening on %s", address)
        return cls(address, bytes.fromhex(key), state, extra_ops)

    def _serve(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except (EOFError, AuthenticationError):
                log.warning("a control client failed to authenticate")
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: Connection) -> None:
        while True:
            try:
                request = json.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return
            answer: dict[str, Any] = {}
            finished = threading.Event()

            def reply(value: dict[str, Any], answer: dict = answer,
                      finished: threading.Event = finished) -> None:
                answer.update(value)
                finished.set()

            Clock.schedule_once(lambda dt, r=request, f=reply: self._run(r, f), 0)
            finished.wait(30)
            conn.send_bytes(json.dumps(answer or {"error": "timeout"}).encode())

    def _run(self, request: dict[str, Any], reply: Callable[[dict[str, Any]], None]) -> None:
        op = request.get("op")
        try:
            if op == "tap":
                self._tap(str(request["target"]), reply, float(request.get("hold_s", 0)))
            elif op == "state":
                reply({"ok": True, "state": self._state()})
            elif op == "screenshot":
                reply({"ok": True, "path": self._screenshot(str(request["path"]))})
            elif op == "layout":
                reply({"ok": True, "window": list(Window.size),
                       "controls": control_geometry(Window)})
            elif op == "window":
                reply({"ok": True, "size": list(Window.size), "pos": [Window.left, Window.top]})
            elif op in self._extra_ops:
                reply(self._extra_ops[op](request))
            else:
                reply({"error": f"unknown op {op!r}"})
        except (LookupError, ValueError, TypeError, OSError) as exc:
            reply({"error": str(exc)})

    def _tap(self, tap_id: str, reply: Callable[[dict[str, Any]], None],
             hold_s: float = 0.0) -> None:
        widget = find_tap_target(Window, tap_id)
        x, y = widget.to_window(*widget.center)
        width, height = Window.system_size
        sx, sy = x / max(1, width - 1), y / max(1, height - 1)

        self._provider.tap(sx, sy, lambda down_ns, up_ns: reply(
            {"ok": True, "down_ns": down_ns, "up_ns": up_ns, "x": x, "y": y}), hold_s)

    @staticmethod
    def _screenshot(path: str) -> str:
        """Kivy appends a counter to the name it is given; rename to exactly ``path``."""
        stem, ext = os.path.splitext(os.path.abspath(path))
        written = Window.screenshot(name=f"{stem}-{ext or '.png'}")
        if not written:
            raise OSError("the window could not be captured")
        os.replace(written, path)
        return path
