"""First run: claim the manager's enrolment code at the gateway and keep what it hands back.

The device key goes to its own file with mode 0600 and is never logged or printed; the
rest (device id, gateway address, MQTT login, merchant) goes to ``terminal.json``, also
0600 because it holds the MQTT password. Later runs read both and need no network.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from market_protocol import check_device_id

__all__ = ["TerminalConfig", "ProvisioningError", "claim_enrolment", "load_config",
           "parse_enrolment_input", "update_config",
           "save_enrolment", "CONFIG_FILE", "KEY_FILE"]

log = logging.getLogger(__name__)

CONFIG_FILE = "terminal.json"
KEY_FILE = "device.key"
_CODE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")


class ProvisioningError(RuntimeError):
    """Enrolment failed or the data directory holds no (valid) enrolment; says how to fix it."""


@dataclass(frozen=True)
class TerminalConfig:
    device_id: str
    key_version: int
    gateway_url: str
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    mqtt_password: str
    merchant_id: str
    merchant_name: str
    org: str
    currency: str = "CNY"
    qr_format: str = "url"
    merchant_city: str = "Shanghai"
    mcc: str = "5411"

    def __repr__(self) -> str:  # the MQTT password must not reach a log line by accident
        return f"TerminalConfig(device_id={self.device_id!r}, gateway_url={self.gateway_url!r})"


def _write_private(path: Path, data: bytes) -> None:
    """Write via a 0600 temp file and rename, so the secret is never briefly world-readable."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


_CLAIM_URL = re.compile(r"^(https?://[^\s/]+(?:/[^\s]*?)?)/v1/enrolments/([A-Za-z0-9_-]{4,64})"
                        r"(?:/claim)?/?$")


def parse_enrolment_input(text: str, gateway_url: str | None = None) -> tuple[str, str]:
    """``(gateway_url, code)`` from what the vendor typed or scanned.

    A scanned code may be the claim URL itself (``<gateway>/v1/enrolments/<code>/claim``),
    which carries the gateway's address; a typed code needs ``gateway_url`` beside it.
    """
    text = (text or "").strip()
    match = _CLAIM_URL.match(text)
    if match:
        return match.group(1), match.group(2)
    if not gateway_url:
        raise ProvisioningError("a typed enrolment code needs the gateway's address as well")
    if not _CODE.match(text):
        raise ProvisioningError("the enrolment code looks wrong: expected 4-64 letters/digits")
    return gateway_url.rstrip("/"), text


def claim_enrolment(gateway_url: str, code: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """POST the claim (docs/protocol.md §1) and return the gateway's answer."""
    if not _CODE.match(code or ""):
        raise ProvisioningError("the enrolment code looks wrong: expected 4-64 letters/digits")
    url = f"{gateway_url.rstrip('/')}/v1/enrolments/{code}/claim"
    try:
        response = requests.post(url, timeout=timeout)
    except requests.RequestException as exc:
        raise ProvisioningError(f"cannot reach the gateway at {gateway_url}: {exc}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        reason = body.get("message") or body.get("error") or response.reason
        raise ProvisioningError(f"enrolment refused ({response.status_code}): {reason}")
    for field in ("device_id", "key_version", "device_key", "gateway_url", "mqtt", "merchant"):
        if field not in body:
            raise ProvisioningError(f"the gateway's claim answer lacks {field!r}")
    return body


def save_enrolment(data_dir: str | os.PathLike[str], claim: dict[str, Any]) -> TerminalConfig:
    """Store the claim: key file and config file, both 0600."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        key = bytes.fromhex(claim["device_key"])
        mqtt, merchant = claim["mqtt"], claim["merchant"]
        config = TerminalConfig(
            device_id=check_device_id(claim["device_id"]),
            key_version=int(claim["key_version"]),
            gateway_url=str(claim["gateway_url"]).rstrip("/"),
            mqtt_host=str(mqtt["host"]), mqtt_port=int(mqtt["port"]),
            mqtt_username=str(mqtt["username"]), mqtt_password=str(mqtt["password"]),
            merchant_id=str(merchant["merchant_id"]), merchant_name=str(merchant["name"]),
            org=str(merchant["org"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProvisioningError(f"the gateway's claim answer is malformed: {exc}") from exc
    if len(key) < 16:
        raise ProvisioningError("the device key is too short")
    _write_private(directory / KEY_FILE, key.hex().encode() + b"\n")
    _write_private(directory / CONFIG_FILE,
                   json.dumps(asdict(config), indent=1, ensure_ascii=False).encode())
    log.info("enrolled as device %s at %s", config.device_id, config.gateway_url)
    return config


def load_config(data_dir: str | os.PathLike[str]) -> tuple[TerminalConfig, bytes]:
    """``(config, device_key)``; ProvisioningError when the terminal was never enrolled."""
    directory = Path(data_dir)
    config_path, key_path = directory / CONFIG_FILE, directory / KEY_FILE
    if not config_path.exists() or not key_path.exists():
        raise ProvisioningError(
            f"{directory} holds no enrolment: run 'tracepay terminal --data-dir {directory}"
            " --enrol-code CODE --gateway-url URL' with a code from the market manager")
    if key_path.stat().st_mode & 0o077:
        raise ProvisioningError(f"{key_path} is readable by others: chmod 600 it")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
        config = TerminalConfig(**data)
        key = bytes.fromhex(key_path.read_text().strip())
    except (ValueError, TypeError) as exc:
        raise ProvisioningError(f"{config_path} or {key_path} is damaged: {exc}") from exc
    return config, key


def update_config(data_dir: str | os.PathLike[str], **changes: Any) -> TerminalConfig:
    """Change terminal options (``qr_format``, ``currency``) without touching the key."""
    config, _ = load_config(data_dir)
    data = {**asdict(config), **changes}
    new = TerminalConfig(**data)
    _write_private(Path(data_dir) / CONFIG_FILE,
                   json.dumps(asdict(new), indent=1, ensure_ascii=False).encode())
    return new
