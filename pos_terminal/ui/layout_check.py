"""Where every control of a window is, and what is wrong with the layout.

``control_geometry`` (Kivy) lists the visible controls: widgets with a ``tap_id`` and labels
with words, each with its window rectangle and the size its words need. ``layout_problems``
(no Kivy) says which are outside the window, overlap another, or whose words do not fit: the
checks a 800x480 panel fails when a key is pushed off the edge or onto its neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["control_geometry", "layout_problems"]

_SLACK = 1.0  # px: Kivy rounds positions; a one-pixel touch is not an overlap


def _visible(widget: Any) -> bool:
    return widget.opacity > 0 and widget.width > 1 and widget.height > 1


def _words_size(label: Any) -> list[float]:
    """The size the label's words take: with a fixed ``text_size`` Kivy clips the texture to
    it, so read the laid-out content instead (what would be cut off)."""
    core = getattr(label, "_label", None)
    content = getattr(core, "content_size", None) if core is not None else None
    size = content or label.texture_size
    return [float(size[0]), float(size[1])]


def control_geometry(root: Any) -> list[dict[str, Any]]:
    """The visible controls under ``root`` (the Window), top-down. Content of a scroll view
    is checked against the scroll view, not the window (it is meant to run past it)."""
    from kivy.uix.label import Label
    from kivy.uix.scrollview import ScrollView

    found: list[dict[str, Any]] = []

    def walk(widget: Any, path: tuple[int, ...], scroll: int | None, clip: Any) -> None:
        if not _visible(widget):
            return
        tap_id = getattr(widget, "tap_id", None)
        words = isinstance(widget, Label) and bool(widget.text.strip())
        if tap_id or words:
            left, bottom = widget.to_window(widget.x, widget.y)
            found.append({
                "id": len(found), "tap_id": tap_id or None, "kind": type(widget).__name__,
                "text": widget.text if isinstance(widget, Label) else "",
                "rect": [left, bottom, widget.width, widget.height],
                "texture": _words_size(widget) if isinstance(widget, Label) else None,
                "path": list(path), "in_scroll": scroll is not None, "clip": clip})
        if isinstance(widget, ScrollView):
            left, bottom = widget.to_window(widget.x, widget.y)
            clip = [left, bottom, widget.width, widget.height]
            scroll = len(found)
        for index, child in enumerate(reversed(widget.children)):
            walk(child, (*path, index), scroll, clip)

    for index, child in enumerate(root.children):
        walk(child, (index,), None, None)
    return found


def _inside(rect: Sequence[float], box: Sequence[float]) -> bool:
    x, y, w, h = rect
    bx, by, bw, bh = box
    return (x >= bx - _SLACK and y >= by - _SLACK and x + w <= bx + bw + _SLACK
            and y + h <= by + bh + _SLACK)


def _overlap(a: list[float], b: list[float]) -> bool:
    return (min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]) > _SLACK
            and min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]) > _SLACK)


def _contains(outer: dict[str, Any], inner: dict[str, Any]) -> bool:
    return inner["path"][:len(outer["path"])] == outer["path"] and outer is not inner


def layout_problems(controls: list[dict[str, Any]], window: tuple[int, int]) -> list[str]:
    """Human-readable problems; empty when every control is on screen, apart, and legible."""
    problems = []
    screen = [0, 0, window[0], window[1]]

    def name(control: dict[str, Any]) -> str:
        return f"{control['tap_id'] or control['kind']} {control['text']!r}"

    for control in controls:
        if control["in_scroll"]:
            clip = control["clip"]
            if not _inside([control["rect"][0], clip[1], control["rect"][2], clip[3]], clip):
                problems.append(f"{name(control)} runs past the side of its list")
        elif not _inside(control["rect"], screen):
            problems.append(f"{name(control)} at {control['rect']} is outside the window")
        texture = control["texture"]
        if texture and (texture[0] > control["rect"][2] + _SLACK
                        or texture[1] > control["rect"][3] + _SLACK):
            problems.append(f"{name(control)}: its words need {texture}, it has "
                            f"{control['rect'][2:]}")
    on_screen = [c for c in controls if not c["in_scroll"]]
    for i, first in enumerate(on_screen):
        for second in on_screen[i + 1:]:
            if _contains(first, second) or _contains(second, first):
                continue
            if _overlap(first["rect"], second["rect"]):
                problems.append(f"{name(first)} overlaps {name(second)}")
    return problems
