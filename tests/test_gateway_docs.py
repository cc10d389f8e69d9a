"""docs/gateway.md names every setting, every command option and every HTTP route."""

from __future__ import annotations

from pathlib import Path

from aggregation_gateway.cli import device, gateway
from aggregation_gateway.openapi import openapi_document
from aggregation_gateway.settings import GATEWAY_SETTINGS

DOC = (Path(__file__).parent.parent / "docs" / "gateway.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [s.name for s in GATEWAY_SETTINGS if f"`{s.name}`" not in DOC]
    assert missing == []


def test_every_option_and_command_is_documented() -> None:
    options = [opt for param in gateway.params for opt in getattr(param, "opts", [])
               if opt.startswith("--")]
    missing = [opt for opt in options if opt not in DOC]
    assert missing == []
    for name in device.commands:
        assert f"tracepay device {name}" in DOC


def test_every_command_help_has_an_example() -> None:
    for command in (gateway, *device.commands.values()):
        assert "Example:" in (command.help or ""), command.name


def test_every_api_route_is_documented() -> None:
    for path in openapi_document()["paths"]:
        if path.startswith("/manager"):
            continue
        assert path.replace("{", "<").split("<")[0] in DOC, path


def test_settings_precedence_and_unknown_keys(tmp_path: Path) -> None:
    import pytest

    from aggregation_gateway.settings import load_gateway_settings
    from market_protocol.settings import SettingsError

    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nport = 9001\nqr_lifetime_s = 120\nhost = "127.0.0.1"\n')
    settings = load_gateway_settings(str(config), {"qr_lifetime_s": 60},
                                     environ={"TRACEPAY_GATEWAY_PORT": "9002"})
    assert settings["port"] == 9002 and settings["qr_lifetime_s"] == 60
    assert settings["public_url"] == "http://127.0.0.1:9002"
    config.write_text("[gateway]\nqr_lifetim_s = 1\n")
    with pytest.raises(SettingsError, match="qr_lifetim_s"):
        load_gateway_settings(str(config), environ={})
    with pytest.raises(SettingsError, match="platform_url"):
        load_gateway_settings(overrides={"platform_url": "ftp://x"}, environ={})
