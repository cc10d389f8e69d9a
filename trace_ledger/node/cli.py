"""``tracepay ledger-node``: one organisation's ledger node as one process."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import ORGS
from market_protocol.signing import load_or_create_private_key, load_public_key, public_key_raw_b64

from ..cosigned import DEFAULT_ORIGIN
from .chain import NodeChain

__all__ = ["ledger_node", "KEY_NAME", "LOG_NAME"]

log = logging.getLogger(__name__)

KEY_NAME = "node_key.pem"
LOG_NAME = "node.log"


def _node_key(data_dir: Path) -> Ed25519PrivateKey:
    path = data_dir / KEY_NAME
    created = not path.exists()
    key = load_or_create_private_key(path)
    if created:
        log.warning("generated a NEW node key %s (public %s): verifiers must pin it before "
                    "they accept this node's signatures", path, public_key_raw_b64(key))
    return key


@click.command("ledger-node")
@click.option("--org", required=True, type=click.Choice(ORGS), help="This node's organisation.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="The node's own directory: store, private key (0600), log.")
@click.option("--nats", "nats_urls", required=True,
              help="Comma-separated nats:// URLs of the ordering cluster.")
@click.option("--user", default=None, help="NATS user (node-<org>).")
@click.option("--password-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="File holding the NATS user's password.")
@click.option("--gateway-key", "gateway_key_file", required=True,
              type=click.Path(dir_okay=False, exists=True),
              help="The gateway's public key (PEM): every trade's signature is checked by it.")
@click.option("--http-host", default="127.0.0.1", show_default=True)
@click.option("--http-port", default=0, type=int, help="Read API port (0: no API).")
@click.option("--origin", default=DEFAULT_ORIGIN, show_default=True,
              help="Origin line of the checkpoints this node signs (the same on every node).")
def ledger_node(org: str, data_dir: str, nats_urls: str, user: str | None,
                password_file: str | None, gateway_key_file: str, http_host: str,
                http_port: int, origin: str = DEFAULT_ORIGIN) -> None:
    """Run one organisation's ledger node: follow the transaction stream, validate every
    entry, cut and sign blocks with this node's own key, serve the read API.

    \b
    Example:
        tracepay ledger-node --org wholesale_market --data var/nodes/wholesale_market \\
            --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223 --user node-wholesale_market \\
            --password-file var/nats/secrets/node-wholesale_market.password \\
            --gateway-key var/gateway/gateway_public.pem --http-port 8701
    """
    from market_protocol.checkpoint import Checkpoint, CheckpointError
    from service_base.serving import serve_wsgi

    from .api import create_app
    from .follower import Follower

    try:
        Checkpoint(origin, 0, bytes(32))
    except CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="--origin") from exc
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(directory / LOG_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    key = _node_key(directory)
    chain = NodeChain(org, directory, key, load_public_key(Path(gateway_key_file)))
    password = Path(password_file).read_text().strip() if password_file else None
    follower = Follower(chain, [u.strip() for u in nats_urls.split(",") if u.strip()],
                        user=user, password=password).start()
    log.info("ledger node %s: %d blocks, stream_seq %d, public key %s", org,
             len(chain.block_hashes()), chain.stream_seq, public_key_raw_b64(key))

    def status() -> dict[str, object]:
        return {"following": follower.connected, "error": follower.error,
                "height": len(chain.block_hashes()), "timings": chain.timings.as_dict()}

    try:
        if http_port:
            serve_wsgi(lambda: create_app(chain, status, origin), http_host, http_port, threads=8)
        else:
            stopped = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stopped.set())
            stopped.wait()
    finally:
        follower.stop()
        chain.close()
