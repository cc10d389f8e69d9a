"""``tracepay bridge`` (serve) and ``tracepay ledger verify|trust|head|show``: thin shells over
``BridgeService`` and the ledger."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from market_protocol import SettingsError, load_settings, signing

from .settings import SERVICE, SETTINGS

__all__ = ["bridge", "ledger"]

log = logging.getLogger(__name__)


@click.command("bridge")
@click.option("--host", default=None, help="Listen address [127.0.0.1].")
@click.option("--port", type=int, default=None, help="HTTP port [8300].")
@click.option("--data-dir", default=None, help="Ledger nodes and index [var/bridge].")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="TOML settings file ([bridge] section).")
@click.option("--mqtt-host", default=None, help="MQTT broker host (omit: HTTP intake only).")
@click.option("--mqtt-port", type=int, default=None, help="MQTT broker port [1883].")
@click.option("--mqtt-username", default=None, help="MQTT user name.")
@click.option("--mqtt-password", default=None, help="MQTT password.")
@click.option("--gateway-url", default=None,
              help="Gateway base URL; its key is fetched from GET <url>/v1/keys, retrying.")
@click.option("--gateway-public-key", "gateway_public_key", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="PEM file of the gateway's public key (instead of --gateway-url).")
@click.option("--workers", type=int, default=None, help="HTTP worker processes [1].")
@click.option("--public-url", default=None, help="Base URL for GS1 Digital Link lot URLs.")
@click.option("--ordering", type=click.Choice(["solo", "jetstream"]), default=None,
              help="solo: in-process ledger [default]; jetstream: the NATS LEDGER stream.")
@click.option("--nats", default=None, help="NATS server URLs, comma-separated (jetstream).")
@click.option("--nats-user", default=None, help="NATS user [bridge].")
@click.option("--nats-password-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="File holding the NATS user's password.")
@click.option("--nodes", default=None,
              help="Ledger node read APIs, comma-separated (jetstream; failover).")
def bridge(config_file: str | None, **flags: Any) -> None:
    """Run the ledger bridge: MQTT trade consumer, ledger writer and trace API.

    With ``--ordering jetstream`` the bridge publishes each batch of ledger entries to the
    LEDGER stream and acknowledges a trade only after JetStream acknowledged its batch;
    reads (trace, proofs, head) go to the organisations' nodes.

    \b
    Example:
        tracepay bridge --port 8300 --data-dir var/bridge \\
            --mqtt-host 127.0.0.1 --mqtt-port 1883 --gateway-url http://127.0.0.1:8200
        tracepay bridge --ordering jetstream --data-dir var/bridge \\
            --nats nats://10.0.1.5:4222,nats://10.0.2.5:4222,nats://10.0.3.5:4222 \\
            --nats-user bridge --nats-password-file var/nats/secrets/bridge.password \\
            --nodes http://10.0.1.5:8400,http://10.0.2.5:8400 --gateway-url http://127.0.0.1:8200
    """
    try:
        settings = load_settings(SETTINGS, SERVICE, config_file=config_file, overrides=flags)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    key = _gateway_key(settings)
    ordering = _ordering(settings)
    if settings["workers"] > 1:
        if ordering is not None:
            raise click.UsageError("--workers reads the solo ledger's files; with "
                                   "--ordering jetstream the nodes serve the reads")
        _serve_with_workers(settings, key)
        return
    from service_base.serving import serve_wsgi
    from trace_ledger.ledger import SWITCH_INTERVAL_S

    from .app import create_app
    from .service import BridgeService

    if ordering is None:
        # Process-wide, so the entry point sets it: this process runs the ledger's node
        # threads (with JetStream ordering the nodes are processes of their own).
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    service = BridgeService(settings["data_dir"], gateway_key=key,
                            block_max=settings["block_max"],
                            block_timeout_s=settings["block_timeout_s"],
                            enrol_unknown_devices=settings["enrol_unknown_devices"],
                            public_url=settings["public_url"],
                            admin_token=settings["admin_token"],
                            trades_token=settings["trades_token"], ordering=ordering)
    if settings["mqtt_host"]:
        service.start_mqtt(settings["mqtt_host"], settings["mqtt_port"],
                           settings["mqtt_username"], settings["mqtt_password"])
    signal.signal(signal.SIGTERM, _exit_on_signal)
    click.echo(f"bridge listening on http://{settings['host']}:{settings['port']} "
               f"(ordering: {service.ordering})", err=True)
    try:
        serve_wsgi(lambda: create_app(service), settings["host"], settings["port"],
                   workers=1, threads=settings["threads"])
    finally:
        service.close()


def _ordering(settings: dict[str, Any]) -> Any:
    """None for the solo ledger; the stream ledger's factory for ``--ordering jetstream``."""
    if settings["ordering"] != "jetstream":
        return None
    from trace_ledger.stream import StreamError

    from .ordering import stream_ordering

    try:
        factory = stream_ordering(settings)
    except (ValueError, OSError, ImportError) as exc:
        raise click.UsageError(str(exc)) from exc

    def checked(endorse: Any) -> Any:
        try:
            return factory(endorse)
        except StreamError as exc:
            raise click.ClickException(str(exc)) from exc
    return checked


def _exit_on_signal(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _serve_with_workers(settings: dict[str, Any], key: Any) -> None:
    """One writer child process on a private port; ``workers`` reader processes in front."""
    from service_base.serving import serve_wsgi
    from service_base.testing import ServiceProcess, free_port

    data_dir = Path(settings["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    pem = data_dir / "gateway_public_key.pem"
    pem.write_text(signing.public_key_pem(key))
    writer_port = free_port()
    env = {f"TRACEPAY_BRIDGE_{name.upper()}": _env_text(value)
           for name, value in settings.items() if value is not None}
    env.update({"TRACEPAY_BRIDGE_HOST": "127.0.0.1", "TRACEPAY_BRIDGE_PORT": str(writer_port),
                "TRACEPAY_BRIDGE_WORKERS": "1", "TRACEPAY_BRIDGE_GATEWAY_URL": "",
                "TRACEPAY_BRIDGE_GATEWAY_PUBLIC_KEY": str(pem)})
    writer_url = f"http://127.0.0.1:{writer_port}"
    writer = ServiceProcess([sys.executable, "-m", "tracepay.cli", "bridge"],
                            log_path=data_dir / "writer.log", env=env,
                            health_url=f"{writer_url}/healthz", startup_timeout=120)
    writer.start()
    click.echo(f"bridge writer on {writer_url} (log {data_dir / 'writer.log'}); "
               f"{settings['workers']} readers on "
               f"http://{settings['host']}:{settings['port']}", err=True)

    def reader_app() -> Any:
        from .app import create_app
        from .reader import ReaderService

        return create_app(ReaderService(data_dir, writer_url=writer_url, gateway_key=key,
                                        public_url=settings["public_url"],
                                        admin_token=settings["admin_token"]))

    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        serve_wsgi(reader_app, settings["host"], settings["port"],
                   workers=settings["workers"], threads=settings["threads"])
    finally:
        writer.stop()


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _gateway_key(settings: dict[str, Any]) -> Any:
    from .service import fetch_gateway_key

    if settings["gateway_public_key"]:
        try:
            return signing.load_public_key(Path(settings["gateway_public_key"]))
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"--gateway-public-key: {exc}") from exc
    if settings["gateway_url"]:
        try:
            return fetch_gateway_key(settings["gateway_url"], settings["gateway_key_timeout_s"])
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from exc
    raise click.UsageError("give --gateway-url or --gateway-public-key: trades are checked "
                           "against the gateway's signature")


def _open_ledger(data_dir: str) -> Any:
    from trace_ledger import Ledger

    path = Path(data_dir) / "ledger"
    if not path.is_dir():
        raise click.UsageError(f"no ledger under {data_dir} (expected {path})")
    return Ledger.open(path)


@click.group("ledger")
def ledger() -> None:
    """Verify and inspect the ledger: a bridge's data directory, organisation nodes'
    directories, and the nodes' cosigned checkpoints.

    \b
    Example:
        tracepay ledger trust --data-dir var/bridge --out var/ledger-trust.json
        tracepay ledger verify --data-dir var/bridge --trust var/ledger-trust.json
        tracepay ledger show --data-dir var/bridge dev-1.7.abc
        tracepay ledger checkpoint --trust var/node-trust.json --nodes URL,URL,URL
    """


@ledger.command("verify")
@click.option("--data-dir", default=None, help="The bridge's data directory.")
@click.option("--node", "nodes", multiple=True, metavar="ORG=DIR",
              help="Instead: one organisation node's directory, checked against --checkpoint.")
@click.option("--checkpoint", "cosigned_file", default=None, type=click.Path(dir_okay=False),
              help="A cosigned checkpoint note (`tracepay ledger checkpoint`), with --node.")
@click.option("--nodes", "node_urls", default=None,
              help="Other nodes' read API URLs (comma-separated), with --checkpoint: they "
                   "name the first block that differs, each proven against the checkpoint.")
@click.option("--trust", "trust_file", envvar="TRACEPAY_LEDGER_TRUST", default=None,
              type=click.Path(dir_okay=False),
              help="Trust file of the pinned public keys, written at deployment by "
                   "`tracepay ledger trust` [env TRACEPAY_LEDGER_TRUST]. Required: keys "
                   "found in the data prove nothing.")
@click.option("--checkpoints", "checkpoint_file", envvar="TRACEPAY_LEDGER_CHECKPOINTS",
              default=None, type=click.Path(dir_okay=False),
              help="This verifier's checkpoint file (created on first use): the blocks must "
                   "equal the ones verified before; a clean run adds the new ones "
                   "[env TRACEPAY_LEDGER_CHECKPOINTS].")
def verify(data_dir: str | None, nodes: tuple[str, ...], cosigned_file: str | None,
           node_urls: str | None, trust_file: str | None, checkpoint_file: str | None) -> None:
    """Check every node against the pinned keys: hash chain, every signature, Merkle roots,
    off-chain records present and intact where the chain says, copies, checkpoints.

    Prints JSON; exits 1 and names the first bad block or record when anything is wrong.
    Neither file may live inside --data-dir.

    \b
    Example:
        tracepay ledger verify --data-dir var/bridge --trust var/ledger-trust.json \\
            --checkpoints var/ledger-checkpoints.json
        tracepay ledger verify --node retail_market=var/nodes/retail_market \\
            --trust var/node-trust.json --checkpoint var/checkpoint.note
    """
    from trace_ledger import verify_data_dir
    from trace_ledger.trust import TrustFileError, inside, load_checkpoints, load_trust_file
    from trace_ledger.verify_jobs import block_hashes

    if data_dir is not None and not nodes and not (Path(data_dir) / "ledger").is_dir():
        raise click.UsageError(f"no ledger under {data_dir} (expected {data_dir}/ledger)")
    if trust_file is None:
        click.echo(json.dumps({"ok": False, "anchored": False, "message": "unanchored: no "
                               "--trust file, so nothing was verified against pinned keys"}))
        raise click.UsageError("no trust anchor: give --trust FILE (the public keys pinned at "
                               "deployment with `tracepay ledger trust`); without one the "
                               "result would prove nothing")
    if nodes:
        from trace_ledger.checkpoint_cli import verify_node_checkpoint

        return verify_node_checkpoint(nodes, trust_file, cosigned_file, node_urls)
    if data_dir is None:
        raise click.UsageError("give --data-dir DIR (a bridge) or --node ORG=DIR")
    ledger_dir = Path(data_dir) / "ledger"
    for option, path in (("--trust", trust_file), ("--checkpoints", checkpoint_file)):
        if path is not None and inside(Path(path), Path(data_dir)):
            raise click.UsageError(f"{option} {path} lies inside --data-dir: whoever can "
                                   "rewrite the data could rewrite it too")
    try:
        keys = load_trust_file(Path(trust_file))
        checkpoints = load_checkpoints(Path(checkpoint_file)) if checkpoint_file else []
    except TrustFileError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        report = verify_data_dir(ledger_dir, keys, checkpoints=checkpoints)
    except FileNotFoundError as exc:
        raise click.UsageError(f"no ledger under {data_dir}: {exc}") from exc
    except Exception as exc:  # damage the checks did not foresee is still damage
        log.exception("ledger verification stopped")
        click.echo(json.dumps({"ok": False, "first_problem": f"verification could not "
                               f"complete: {type(exc).__name__}: {exc}"}))
        click.echo(f"ledger verification FAILED: {exc}", err=True)
        sys.exit(1)
    result = report.to_dict()
    result["trust_file"] = str(trust_file)
    result["anchored"] = True
    result["checkpointed_blocks"] = len(checkpoints)
    if report.ok and checkpoint_file:
        from trace_ledger.node_store import STORE_NAME
        from trace_ledger.signers import ORDERER
        from trace_ledger.trust import save_checkpoints

        stores = {org: ledger_dir / org / STORE_NAME for org in keys if org != ORDERER}
        save_checkpoints(Path(checkpoint_file), block_hashes(stores))
    click.echo(json.dumps(result, ensure_ascii=False))
    if not report.ok:
        click.echo(f"ledger verification FAILED: {report.first}", err=True)
        sys.exit(1)


@ledger.command("trust")
@click.option("--data-dir", required=True, help="The bridge's data directory.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Where to write the trust file (outside --data-dir).")
def trust(data_dir: str, out_file: str) -> None:
    """Write the trust file: the public keys of the orderer and of every organisation's node,
    pinned at deployment and handed to every verifier and to the consumer app.

    Run it once, when the nodes are set up, before anyone could have rewritten their data.

    \b
    Example:
        tracepay ledger trust --data-dir var/bridge --out var/ledger-trust.json
    """
    from trace_ledger.trust import inside, write_trust_file

    if inside(Path(out_file), Path(data_dir)):
        raise click.UsageError(f"--out {out_file} lies inside --data-dir: keep the trust "
                               "file apart from the data it vouches for")
    try:
        path = write_trust_file(Path(data_dir) / "ledger", Path(out_file))
    except FileNotFoundError as exc:
        raise click.UsageError(f"no ledger keys under {data_dir}: {exc}") from exc
    click.echo(json.dumps({"trust_file": str(path)}))


@ledger.command("head")
@click.option("--data-dir", required=True, help="The bridge's data directory.")
def head(data_dir: str) -> None:
    """Print the ledger's head (height, block hash, entries) as JSON.

    \b
    Example:
        tracepay ledger head --data-dir var/bridge
    """
    with _open_ledger(data_dir) as opened:
        click.echo(json.dumps(opened.head()))


@ledger.command("show")
@click.option("--data-dir", required=True, help="The bridge's data directory.")
@click.option("--block", "height", type=int, default=None, help="Show a block instead.")
@click.argument("record_id", required=False)
def show(data_dir: str, height: int | None, record_id: str | None) -> None:
    """Print a record (with its proof) or a block as JSON.

    \b
    Example:
        tracepay ledger show --data-dir var/bridge dev-1.7.abc
        tracepay ledger show --data-dir var/bridge --block 3
    """
    if (height is None) == (record_id is None):
        raise click.UsageError("give a RECORD_ID or --block HEIGHT")
    with _open_ledger(data_dir) as opened:
        found = opened.block(height) if height is not None else opened.proof(record_id)
    if found is None:
        raise click.ClickException("not on the ledger")
    click.echo(json.dumps(found, ensure_ascii=False))


def _add_node_commands() -> None:
    from trace_ledger.checkpoint_cli import checkpoint
    from trace_ledger.node_trust_cli import node_trust, verify_nodes_command

    ledger.add_command(checkpoint)
    ledger.add_command(node_trust)
    ledger.add_command(verify_nodes_command)


_add_node_commands()
