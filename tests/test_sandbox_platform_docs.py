"""Every setting and command-line option of the platform is documented."""

from __future__ import annotations

from pathlib import Path

from sandbox_platform.cli import command
from sandbox_platform.settings import SETTINGS

DOC = (Path(__file__).parent.parent / "docs" / "sandbox-platform.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in DOC]
    assert missing == []


def test_every_option_is_documented() -> None:
    options = [name for param in command.params for name in param.opts]
    missing = [name for name in options if f"`{name}`" not in DOC]
    assert missing == []


def test_the_help_has_an_example() -> None:
    assert "Example:" in (command.help or "")
