"""Who this gateway is among several on one database, and the proof that it runs only once.

A gateway on SQLite owns its data directory: a second one started on it (the classic
operator mistake) is refused at once, instead of both fighting over one MQTT session. On
PostgreSQL several gateways share the database, each under its own ``instance_name``:

* the name is held by a session-level advisory lock on a connection of its own, kept for
  the life of the process (a crash or a kill -9 closes the connection and frees the name;
  no lease to expire, no clock to trust), so two processes never run under one name;
* each instance's MQTT client id is its broker user, ``tracepay-gateway-<name>`` unless
  set (Mosquitto enforces it with ``use_username_as_clientid``), and the instance records
  that user with a ``$7$`` hash of its password in ``gateway_instances`` so that any
  instance writing the broker's files admits all of them;
* every instance must hold the same key files (the master key derives device keys, QR
  MACs and the web session key): a check value of the master key is recorded, and an
  instance with another key is refused with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from .database import Database, now_ms
from .mosquitto_auth import mosquitto_hash

__all__ = ["InstanceRefused", "InstanceLease", "acquire_instance", "mqtt_client_id",
           "link_name", "registered_gateway_users", "shared_group", "key_check"]

log = logging.getLogger(__name__)

_BASE_CLIENT_ID = "tracepay-gateway"


class InstanceRefused(RuntimeError):
    """This gateway may not start: another runs under its name, or its keys differ."""


def mqtt_client_id(settings: Mapping[str, Any]) -> str:
    """The broker user when there is one (the broker forces it as the client id), else
    ``tracepay-gateway`` or ``tracepay-gateway-<instance_name>``."""
    if settings.get("mqtt_username"):
        return str(settings["mqtt_username"])
    name = settings.get("instance_name") or ""
    return f"{_BASE_CLIENT_ID}-{name}" if name else _BASE_CLIENT_ID


def link_name(settings: Mapping[str, Any]) -> str:
    """The ``link_status`` row of this instance's MQTT link."""
    name = settings.get("instance_name") or ""
    return f"mqtt:{name}" if name else "mqtt"


def shared_group(settings: Mapping[str, Any]) -> str | None:
    """The ``$share`` group named instances read sales through; None for the only gateway
    (a plain subscription, as before instances existed)."""
    return _BASE_CLIENT_ID if settings.get("instance_name") else None


def key_check(master_key: bytes) -> str:
    """A value that tells master keys apart without revealing them."""
    return hmac.new(master_key, b"tracepay gateway instance key check/1",
                    hashlib.sha256).hexdigest()[:32]


def registered_gateway_users(db: Database) -> list[tuple[str, str]]:
    """(broker user, ``$7$`` hash) of every instance that ever ran on this database."""
    rows = db.conn.execute("SELECT mqtt_username, mqtt_password_hash FROM gateway_instances "
                           "WHERE mqtt_password_hash <> '' ORDER BY name").fetchall()
    return [(row["mqtt_username"], row["mqtt_password_hash"]) for row in rows]


def _lock_key(name: str) -> str:
    return f"tracepay gateway instance:{name}"


class InstanceLease:
    """Held for the life of the gateway process; ``release`` (or exit) frees the name."""

    def __init__(self, name: str, holder: Any, kind: str) -> None:
        self.name = name
        self._holder = holder
        self.kind = kind
        self._stop = threading.Event()
        self.lost = threading.Event()

    def watch(self, interval: float = 5.0) -> None:
        """PostgreSQL: check the lock's connection now and then; if the database dropped
        it, the name is no longer ours and ``lost`` is set (the CLI then stops)."""
        if self.kind != "postgresql":
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    held = self._holder.execute(
                        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND pid = pg_backend_pid()").fetchone()
                except psycopg.Error as exc:
                    log.error("lost the database connection holding instance %r: %s",
                              self.name, exc)
                    held = None
                if held is None:
                    self.lost.set()
                    return

        threading.Thread(target=run, name="instance-lease", daemon=True).start()

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError, psycopg.Error):
            self._holder.close()


def _sqlite_lease(settings: Mapping[str, Any]) -> InstanceLease:
    if settings.get("instance_name"):
        raise InstanceRefused("several gateway instances need a shared PostgreSQL database "
                              "(database_url); on SQLite run one gateway without "
                              "instance_name")
    path = Path(settings["data_dir"]) / "gateway.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise InstanceRefused(f"another gateway ({owner}) runs on the data directory "
                              f"{settings['data_dir']}; stop it first, or run several "
                              "gateways on PostgreSQL, each with its own instance_name"
                              ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    return InstanceLease("", handle, "sqlite")


def _refuse_if_taken(holder: Any, name: str) -> None:
    if holder.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                      (_lock_key(name),)).fetchone()[0]:
        return
    row = holder.execute("SELECT host, pid, started_at_ms FROM gateway_instances WHERE "
                         "name = %s", (name,)).fetchone()
    where = f" (pid {row[1]} on {row[0]})" if row else ""
    label = f"instance {name!r}" if name else "a gateway without an instance_name"
    raise InstanceRefused(f"{label} already runs on this database{where}; give each "
                          "gateway its own instance_name")


def _other_live_user(holder: Any, name: str, username: str) -> str | None:
    """The name of a running instance that uses ``username`` as its broker user."""
    rows = holder.execute("SELECT name FROM gateway_instances WHERE mqtt_username = %s "
                          "AND name <> %s", (username, name)).fetchall()
    for (other,) in rows:
        if holder.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                          (_lock_key(other),)).fetchone()[0]:
            holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_lock_key(other),))
        else:
            return str(other)
    return None


def _postgres_lease(db: Database, settings: Mapping[str, Any], master_key: bytes
                    ) -> InstanceLease:
    name = settings.get("instance_name") or ""
    holder = psycopg.connect(db.url, autocommit=True, application_name=(
        f"tracepay-gateway {name}".strip()))
    try:
        _refuse_if_taken(holder, name)
        check = key_check(master_key)
        for other, theirs in holder.execute("SELECT name, key_check FROM gateway_instances "
                                            "WHERE name <> %s", (name,)).fetchall():
            if theirs != check:
                raise InstanceRefused(
                    f"the master key in {settings['data_dir']} is not the one instance "
                    f"{other!r} uses on this database: every instance needs the same key "
                    "files (master.key, gateway_ed25519.pem; docs/deploy.md)")
        username = mqtt_client_id(settings)
        clash = _other_live_user(holder, name, username)
        if clash is not None:
            raise InstanceRefused(f"instance {clash!r} already uses the broker user "
                                  f"{username!r}: each instance needs its own (the broker "
                                  "takes the user as the client id)")
        password = settings.get("mqtt_password") or ""
        holder.execute(
            "INSERT INTO gateway_instances (name, mqtt_username, mqtt_password_hash, "
            "key_check, host, pid, started_at_ms) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET mqtt_username = excluded.mqtt_username, "
            "mqtt_password_hash = excluded.mqtt_password_hash, key_check = "
            "excluded.key_check, host = excluded.host, pid = excluded.pid, "
            "started_at_ms = excluded.started_at_ms",
            (name, username, mosquitto_hash(password) if password else "", check,
             socket.gethostname(), os.getpid(), now_ms()))
    except BaseException:
        holder.close()
        raise
    return InstanceLease(name, holder, "postgresql")


def acquire_instance(db: Database, settings: Mapping[str, Any], master_key: bytes
                     ) -> InstanceLease:
    """Take this gateway's name (or its SQLite data directory), or raise
    :class:`InstanceRefused` saying who has it or what differs."""
    if db.dialect == "sqlite":
        return _sqlite_lease(settings)
    return _postgres_lease(db, settings, master_key)
