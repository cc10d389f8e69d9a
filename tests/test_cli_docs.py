"""Every command is documented where a user looks, and every help text shows an example."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tracepay.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = README + "".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))


def _leaf_commands() -> list[tuple[str, click.Command]]:
    context = click.Context(main)
    found = []
    for name in main.list_commands(context):
        command = main.get_command(context, name)
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", command.get_command(context, sub))
                      for sub in command.list_commands(context)]
        else:
            found.append((name, command))
    return found


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_top_level_command_is_in_the_readme(name: str):
    assert re.search(rf"tracepay {re.escape(name)}\b", README), f"README lacks 'tracepay {name}'"


@pytest.mark.parametrize(("name", "command"), _leaf_commands(), ids=lambda v: str(v))
def test_every_command_is_documented_with_an_example(name: str, command: click.Command):
    assert f"tracepay {name}" in DOCS, f"no page in README or docs/ mentions 'tracepay {name}'"
    assert "Example" in (command.help or ""), f"'tracepay {name} --help' shows no example"


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
