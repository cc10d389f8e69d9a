"""First-run enrolment: the view-model against the real gateway process, then the real
window under Xvfb enrolling from its own screen (typed code, wrong code, scanned URL)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import requests

from pos_terminal.barcodes import ean13_check_digit
from pos_terminal.provisioning import CONFIG_FILE, KEY_FILE
from pos_terminal.ui.enrol_model import EnrolmentModel, Field
from pos_terminal.ui.harness import TerminalWindows, VirtualScreen
from service_base.testing import ServiceProcess, free_port, tracepay_command

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def gateway(mqtt_broker, tmp_path_factory):
    root = tmp_path_factory.mktemp("gateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        tracepay_command("gateway", "--port", str(port), "--data-dir", str(root / "gw"),
                         "--public-url", url, "--platform-url", "http://127.0.0.1:9",
                         "--no-platform-auto-register", "--mqtt-host", "127.0.0.1",
                         "--mqtt-port", str(mqtt_broker.port), "--manager-user", "manager",
                         "--manager-password", "correct-horse-battery"),
        log_path=root / "gateway.log", health_url=f"{url}/healthz")
    with process:
        yield url


def issue_code(gateway: str) -> dict:
    response = requests.post(f"{gateway}/v1/devices", auth=("manager", "correct-horse-battery"),
                             json={"merchant_id": "stall-9", "merchant_name": "Wang's fish",
                                   "org": "retail_market"}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def type_keys(model: EnrolmentModel, text: str) -> None:
    for char in text:
        model.press(char)


# -- the view-model ------------------------------------------------------------------------

def test_keys_edit_the_active_field_and_refuse_non_keys(tmp_path):
    model = EnrolmentModel(tmp_path)
    type_keys(model, "AB3")
    model.press("back")
    model.select_field(Field.GATEWAY)
    type_keys(model, "127.0.0.1:80")
    assert (model.code, model.gateway) == ("AB", "127.0.0.1:80")
    model.press("clear")
    assert model.gateway == "" and model.code == "AB"
    with pytest.raises(ValueError):
        model.press("enter")
    with pytest.raises(ValueError):
        model.select_field("password")


def test_a_bare_code_needs_the_gateway_and_a_sane_shape(tmp_path):
    model = EnrolmentModel(tmp_path)
    assert model.submit() is None and model.notice.key == "enrol_need_code"
    type_keys(model, "K7Q2K7Q2")
    assert model.submit() is None and model.notice.key == "enrol_need_gateway"
    assert model.field == Field.GATEWAY and not model.busy
    type_keys(model, "127.0.0.1:9")
    model.select_field(Field.CODE)
    model.press("/")
    assert model.submit() is None and model.notice.key == "enrol_bad_code"
    assert not (tmp_path / KEY_FILE).exists()


def test_a_scanned_claim_url_fills_both_fields(tmp_path):
    model = EnrolmentModel(tmp_path, gateway_url="http://127.0.0.1:1")
    model.scanned("  http://127.0.0.1:8123/v1/enrolments/ABCDEFGH2345/claim\r\n")
    assert (model.gateway, model.code) == ("http://127.0.0.1:8123", "ABCDEFGH2345")
    model.scanned("xyz7xyz7")  # a bare scanned code keeps the typed gateway
    assert (model.gateway, model.code) == ("http://127.0.0.1:8123", "XYZ7XYZ7")


def test_unreachable_gateway_is_reported_and_nothing_is_stored(tmp_path):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    model = EnrolmentModel(tmp_path, gateway_url=dead)
    type_keys(model, "ABCDEFGH2345")
    assert model.submit() is None
    assert model.notice.key == "enrol_unreachable" and model.notice.error
    assert "网关" in model.notice_text() and not model.busy
    assert not (tmp_path / KEY_FILE).exists()


def test_claim_at_the_real_gateway_wrong_code_then_good_then_used(gateway, tmp_path):
    issued = issue_code(gateway)
    model = EnrolmentModel(tmp_path / "t", gateway_url=gateway, lang="en")
    type_keys(model, "WRONGCODE234")
    assert model.submit() is None and model.notice.key == "enrol_unknown_code"
    assert model.notice_text().startswith("Wrong code")
    model.press("clear")
    type_keys(model, issued["enrolment_code"].lower())  # typed in lower case: still good
    config = model.submit()
    assert config is not None and config.device_id == issued["device_id"]
    assert model.notice.key == "enrol_done" and model.code == ""
    key_file = tmp_path / "t" / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "t" / CONFIG_FILE).stat().st_mode) == 0o600
    assert key_file.read_text().strip() not in model.notice_text()

    again = EnrolmentModel(tmp_path / "t2", gateway_url=gateway)
    type_keys(again, issued["enrolment_code"])
    assert again.submit() is None and again.notice.key == "enrol_code_used"
    assert not (tmp_path / "t2" / KEY_FILE).exists()


# -- the real window -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def screen():
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is required for the UI tests (Debian package xvfb)")
    with VirtualScreen() as virtual:
        yield virtual


def save_shot(client, directory: Path, name: str) -> Path:
    path = client.screenshot(directory / f"{name}.png")
    assert path.stat().st_size > 1000
    extra = os.environ.get("TRACEPAY_SCREENSHOTS_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


def test_window_enrols_from_its_screen_then_rings_up(screen, gateway, tmp_path, caplog):
    issued = issue_code(gateway)
    data_dir = tmp_path / "fresh"
    log_path = tmp_path / "app.log"
    with TerminalWindows(data_dir, screen.display, log_path=log_path, lang="en",
                         expect_display=False,
                         extra_args=("--gateway-url", gateway)) as running:
        vendor = running.vendor
        state = vendor.state()
        assert state["screen"] == "enrol" and state["enrol"]["gateway"] == gateway
        # a wrong code, tapped on the on-screen keyboard: a clear refusal, still enrolling
        for key in "WRONG2345678":
            vendor.tap(f"enrol-key-{key}")
        vendor.tap("enrol-submit")
        state = vendor.wait_for(lambda s: s["enrol"]["notice_key"] == "enrol_unknown_code",
                                what="the wrong-code message")
        assert state["screen"] == "enrol" and "Wrong code" in state["enrol"]["notice"]
        save_shot(vendor, tmp_path, "terminal-enrol")
        vendor.tap("enrol-clear")
        # the good code typed on the keyboard (as a wedge scanner would), then Enter
        running.type(issued["enrolment_code"] + "\r")
        state = vendor.wait_for(lambda s: s["screen"] == "ring_up", what="the ring-up screen")
        assert "Enrolled as" in state["notice"]
        running.connect_customer()
        vendor.wait_for(lambda s: s["display_connected"], what="customer display")
        vendor.tap("key-3")
        vendor.tap("product-tofu")
        assert [line["quantity"] for line in vendor.state()["lines"]] == [3]
    config = json.loads((data_dir / CONFIG_FILE).read_text())
    assert config["device_id"] == issued["device_id"]
    key_hex = (data_dir / KEY_FILE).read_text().strip()
    assert stat.S_IMODE((data_dir / KEY_FILE).stat().st_mode) == 0o600
    assert key_hex not in log_path.read_text(errors="replace")


def test_window_enrols_from_a_claim_url_on_the_serial_barcode_reader(screen, gateway,
                                                                      tmp_path):
    issued = issue_code(gateway)
    data_dir = tmp_path / "scanned"
    controller, reader_end = os.openpty()  # the reader's serial line, as a real tty
    try:
        with TerminalWindows(data_dir, screen.display, log_path=tmp_path / "app.log",
                             expect_display=False,
                             extra_args=("--scanner", os.ttyname(reader_end))) as running:
            assert running.vendor.state()["enrol"]["gateway"] == ""
            url = f"{gateway}/v1/enrolments/{issued['enrolment_code']}/claim"
            os.write(controller, url.encode() + b"\r\n")
            running.vendor.wait_for(lambda s: s["screen"] == "ring_up",
                                    what="the ring-up screen")
            # the same reader now scans a scale label into the cart
            label = "250000300350"
            os.write(controller, (label + str(ean13_check_digit(label)) + "\r").encode())
            state = running.vendor.wait_for(lambda s: s["lines"], what="the scanned line")
            assert [(x["product_code"], x["weight_g"]) for x in state["lines"]] == \
                [("tomato", 350)]
    finally:
        os.close(controller)
        os.close(reader_end)
    assert json.loads((data_dir / CONFIG_FILE).read_text())["device_id"] == issued["device_id"]


def test_window_enrols_from_a_wedge_scanned_claim_url(screen, gateway, tmp_path):
    issued = issue_code(gateway)
    data_dir = tmp_path / "wedge"
    with TerminalWindows(data_dir, screen.display, log_path=tmp_path / "app.log",
                         expect_display=False) as running:
        running.type(f"{gateway}/v1/enrolments/{issued['enrolment_code']}/claim\r")
        running.vendor.wait_for(lambda s: s["screen"] == "ring_up", what="the ring-up screen")
    assert json.loads((data_dir / CONFIG_FILE).read_text())["device_id"] == issued["device_id"]


def test_cli_window_on_a_fresh_dir_goes_to_the_enrolment_screen(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import pos_terminal.ui.app as ui_app
    from pos_terminal.cli import terminal

    calls = []
    monkeypatch.setattr(ui_app, "run", calls.append)  # the window itself is tested above
    fresh = str(tmp_path / "fresh")
    result = CliRunner().invoke(terminal, ["--data-dir", fresh, "--gateway-url",
                                           "http://127.0.0.1:9"])
    assert result.exit_code == 0, result.output
    assert calls == [{"data_dir": fresh, "scale": "manual", "gateway_url": "http://127.0.0.1:9"}]
    headless = CliRunner().invoke(terminal, ["--data-dir", fresh, "--headless"])
    assert headless.exit_code == 1 and "holds no enrolment" in headless.output


def test_a_half_written_enrolment_is_refused_not_overwritten(tmp_path):
    from pos_terminal.provisioning import ProvisioningError
    from pos_terminal.ui.app import _open_terminal

    assert _open_terminal(tmp_path) is None  # nothing there: the enrolment screen
    (tmp_path / KEY_FILE).write_text("00" * 32)
    os.chmod(tmp_path / KEY_FILE, 0o600)
    with pytest.raises(ProvisioningError):
        _open_terminal(tmp_path)
