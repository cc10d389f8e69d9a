"""The bridge's command line refuses bad settings with a clear message before starting."""

from __future__ import annotations

from click.testing import CliRunner

from ledger_bridge.cli import bridge, ledger


def test_unknown_setting_in_config_file_is_a_usage_error(tmp_path):
    config = tmp_path / "bridge.toml"
    config.write_text('[bridge]\nprot = 8300\n')
    result = CliRunner().invoke(bridge, ["--config", str(config)])
    assert result.exit_code == 2 and "unknown bridge setting(s): prot" in result.output


def test_bad_environment_value_is_a_usage_error():
    result = CliRunner().invoke(bridge, [], env={"TRACEPAY_BRIDGE_BLOCK_MAX": "many"})
    assert result.exit_code == 2 and "block_max" in result.output


def test_unreadable_gateway_key_is_a_usage_error(tmp_path):
    pem = tmp_path / "gateway.pem"
    pem.write_text("not a key")
    result = CliRunner().invoke(bridge, ["--gateway-public-key", str(pem),
                                         "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 2 and "--gateway-public-key" in result.output


def test_unreachable_gateway_fails_after_its_timeout(tmp_path):
    result = CliRunner().invoke(bridge, ["--gateway-url", "http://127.0.0.1:9",
                                         "--data-dir", str(tmp_path)],
                                env={"TRACEPAY_BRIDGE_GATEWAY_KEY_TIMEOUT_S": "0.5"})
    assert result.exit_code == 1 and "could not fetch the gateway's key" in result.output


def test_show_needs_a_record_or_a_block(tmp_path):
    (tmp_path / "ledger").mkdir()
    result = CliRunner().invoke(ledger, ["show", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "RECORD_ID or --block" in result.output
