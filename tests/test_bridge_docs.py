"""docs/bridge.md names every setting, every HTTP operation and every CLI command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger_bridge.cli import bridge, ledger
from ledger_bridge.openapi import OPERATIONS
from ledger_bridge.settings import SETTINGS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "bridge.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented(setting):
    assert f"| `{setting.name}` |" in DOC


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: f"{o[0]} {o[1]}")
def test_every_operation_is_documented(operation):
    method, path = operation[0].upper(), operation[1]
    documented = path.replace("{code}", "<code>").replace("{height}", "<h>") \
        .replace("{record_id}", "<record_id>").replace("{lot}", "<lot>") \
        .replace("{gtin}", "<GTIN>").replace("{merchant_id}", "<merchant_id>") \
        .replace("{device_id}", "<device_id>").replace("{trade_id}", "<trade_id>")
    assert f"{method} {documented}" in DOC or path in ("/openapi.json",)


@pytest.mark.parametrize("command", ["verify", "trust", "head", "show"])
def test_every_ledger_command_is_documented_and_has_an_example(command):
    assert f"tracepay ledger {command}" in DOC
    result = CliRunner().invoke(ledger, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_bridge_help_has_an_example():
    result = CliRunner().invoke(bridge, ["--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    for flag in ("--mqtt-username", "--gateway-public-key", "--workers", "--config"):
        assert flag in result.output


def test_verify_refuses_a_directory_without_a_ledger(tmp_path):
    result = CliRunner().invoke(ledger, ["verify", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no ledger under" in result.output
