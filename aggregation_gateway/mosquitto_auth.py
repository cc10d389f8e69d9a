"""Mosquitto's password and ACL files, written from the device registry.

Each device logs in as its ``device_id`` with ``market_protocol.mqtt_password(device_key)``
and may only publish its own sales topic and read its own results topic; the gateway (and
the ledger bridge, when configured) get the topics they serve. Passwords use Mosquitto 2's
``$7$`` format (PBKDF2-SHA512), so only derived hashes ever reach the broker's files.
After writing, Mosquitto is told to re-read them with SIGHUP.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from market_protocol.topics import PREFIX, SALES_WILDCARD, TRADES_TOPIC

__all__ = ["mosquitto_hash", "render_password_file", "render_acl_file", "write_auth_files",
           "PBKDF2_ITERATIONS"]

log = logging.getLogger(__name__)

#: Mosquitto's own default for ``$7$`` hashes.
PBKDF2_ITERATIONS = 101


def mosquitto_hash(password: str, iterations: int = PBKDF2_ITERATIONS,
                   salt: bytes | None = None) -> str:
    """``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>`` as mosquitto_passwd writes."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def render_password_file(users: Iterable[tuple[str, str]],
                         hashed: Iterable[tuple[str, str]] = ()) -> str:
    """``users`` are (name, password); ``hashed`` are (name, ``$7$`` hash) as recorded by
    other gateway instances. A name appears once: the first entry wins."""
    lines, seen = [], set()
    entries = [(name, mosquitto_hash(password)) for name, password in users]
    for username, digest in [*entries, *hashed]:
        if ":" in username or "\n" in username:
            raise ValueError(f"user name {username!r} cannot go in a password file")
        if username in seen:
            continue
        seen.add(username)
        lines.append(f"{username}:{digest}")
    return "\n".join(lines) + "\n"


def render_acl_file(gateway_users: str | Iterable[str] | None, bridge_user: str | None
                    ) -> str:
    """ACL: named service users first (every gateway instance reads the sales and writes
    results and trades), then the per-device pattern (``%u`` = device id)."""
    if gateway_users is None:
        gateway_users = []
    elif isinstance(gateway_users, str):
        gateway_users = [gateway_users]
    parts = []
    for gateway_user in dict.fromkeys(gateway_users):
        parts.append(f"user {gateway_user}\n"
                     f"topic read {SALES_WILDCARD}\n"
                     f"topic write {PREFIX}/terminals/+/results\n"
                     f"topic write {TRADES_TOPIC}\n")
    if bridge_user:
        parts.append(f"user {bridge_user}\ntopic read {TRADES_TOPIC}\n")
    parts.append(f"pattern write {PREFIX}/terminals/%u/sales\n"
                 f"pattern read {PREFIX}/terminals/%u/results\n")
    return "\n".join(parts)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    tmp.replace(path)


def _signal_broker(pid_file: str) -> None:
    if not pid_file:
        return
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.warning("could not tell the broker to reload (%s): %s", pid_file, exc)


def write_auth_files(settings: Mapping[str, Any], device_users: Iterable[tuple[str, str]],
                     gateway_users: Iterable[tuple[str, str]] = ()) -> bool:
    """Write both files (when configured) under a lock and signal the broker.

    ``gateway_users`` are the (user, ``$7$`` hash) every gateway instance on a shared
    database recorded: each of them keeps its login and its ACL entry."""
    password_file = settings.get("mosquitto_password_file")
    acl_file = settings.get("mosquitto_acl_file")
    if not password_file and not acl_file:
        return False
    users = list(device_users)
    gateway_user = settings.get("mqtt_username") or None
    bridge_user = settings.get("mqtt_bridge_username") or None
    if gateway_user and settings.get("mqtt_password"):
        users.insert(0, (gateway_user, settings["mqtt_password"]))
    if bridge_user and settings.get("mqtt_bridge_password"):
        users.insert(0, (bridge_user, settings["mqtt_bridge_password"]))
    instances = [(name, digest) for name, digest in gateway_users
                 if name not in {gateway_user, bridge_user}]
    lock_path = Path(settings["data_dir"]) / "mosquitto-files.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if password_file:
                _write_atomically(Path(password_file), render_password_file(users, instances))
            if acl_file:
                _write_atomically(Path(acl_file), render_acl_file(
                    [*([gateway_user] if gateway_user else []),
                     *(name for name, _ in instances)], bridge_user))
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)
    _signal_broker(settings.get("mosquitto_pid_file") or "")
    return True
