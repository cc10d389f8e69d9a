"""``tracepay nats``: the ledger's NATS JetStream cluster in the foreground.

A thin shell over :class:`service_base.nats_cluster.NatsCluster`: it starts the servers,
creates the ``LEDGER`` stream as the bridge user (so nodes started before the bridge find
it), prints where everything is and stops the servers cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import signal
import ssl
import time
from pathlib import Path
from types import FrameType

import click

from service_base.nats_cluster import BRIDGE_USER, NatsCluster, TlsFiles
from trace_ledger.stream import StreamError, StreamPublisher

__all__ = ["nats_command", "create_stream"]


def create_stream(cluster: NatsCluster) -> int:
    """Create (or update) the ``LEDGER`` stream with the cluster's replica count; returns
    the number of messages it holds."""
    context = None
    if cluster.tls is not None:
        context = ssl.create_default_context(cafile=str(cluster.tls.ca_file))
    with StreamPublisher(cluster.servers, user=BRIDGE_USER, tls=context,
                         password=cluster.password(BRIDGE_USER)) as publisher:
        return publisher.ensure_stream(cluster.replicas).state.messages


def _ports(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: comma-separated port numbers") from None


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


@click.command("nats")
@click.option("--data", "data_dir", default="var/nats", show_default=True, type=click.Path(),
              help="Directory for the configs, stores, secrets and cluster.json.")
@click.option("--servers", "size", type=click.Choice(["1", "3"]), default="3",
              show_default=True, help="3: a cluster (stream R3); 1: one server (R1).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--ports", help="Client ports, comma-separated (default: free ports).")
@click.option("--no-stream", is_flag=True, help="Do not create the LEDGER stream.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False),
              help="CA file: with --tls-cert/--tls-key, clients must use TLS and routes "
                   "use mutual TLS.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False),
              help="The servers' certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False),
              help="Its key (PEM).")
def nats_command(data_dir: str, size: str, host: str, ports: str | None,
                 no_stream: bool, tls_ca: str | None, tls_cert: str | None,
                 tls_key: str | None) -> None:
    """Run the ledger's NATS JetStream servers until Ctrl-C.

    Each server gets its own config, cluster routes and JetStream store under DATA;
    users bridge, auditor and node-<org> get generated passwords in DATA/secrets (0600),
    and DATA/cluster.json names the server URLs and password files.

    \b
    Example:
        tracepay nats --data var/nats --ports 4222,4223,4224
        tracepay bridge --ordering jetstream --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223 \\
            --nats-user bridge --nats-password-file var/nats/secrets/bridge.password ...
    """
    given = [tls_ca, tls_cert, tls_key]
    if any(given) and not all(given):
        raise click.UsageError("TLS needs all of --tls-ca, --tls-cert and --tls-key")
    tls = (TlsFiles(Path(tls_ca), Path(tls_cert), Path(tls_key))
           if tls_ca and tls_cert and tls_key else None)
    try:
        cluster = NatsCluster(data_dir, size=int(size), host=host, ports=_ports(ports),
                              tls=tls)
        cluster.start()
    except (RuntimeError, TimeoutError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        messages = None if no_stream else create_stream(cluster)
        click.echo(json.dumps({
            "servers": cluster.servers, "pids": [cluster.pid(i) for i in range(cluster.size)],
            "cluster_file": str(cluster.data_dir / "cluster.json"),
            "stream": None if no_stream else {"replicas": cluster.replicas,
                                              "messages": messages}}))
        while all(process and process.process.poll() is None
                  for process in cluster.processes):
            time.sleep(0.5)
        raise click.ClickException("a nats-server exited; see its log under "
                                   f"{cluster.data_dir}")
    except StreamError as exc:
        raise click.ClickException(str(exc)) from None
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        cluster.stop()
