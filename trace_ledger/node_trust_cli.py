"""``tracepay ledger node-trust`` and ``verify-nodes``: the trust file of organisation
nodes (pinned node keys, checkpoint origin, quorum, witnesses) and the check of node
directories against it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["node_trust", "verify_nodes_command"]


def _node_dirs(pairs: tuple[str, ...]) -> dict[str, Path]:
    dirs = {}
    for pair in pairs:
        org, sep, directory = pair.partition("=")
        if not sep or not org or not directory:
            raise click.UsageError(f"--node {pair!r}: expected ORG=DIR")
        dirs[org] = Path(directory)
    return dirs


@click.command("node-trust")
@click.option("--node", "nodes", multiple=True, required=True, metavar="ORG=DIR",
              help="An organisation node's directory (repeat per node).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="Where to write the trust file (outside every node directory).")
@click.option("--quorum", type=int, default=None,
              help="Organisations whose signatures make a checkpoint final [all].")
@click.option("--origin", default=None, help="The checkpoints' origin line [the default].")
@click.option("--witness", "witnesses", multiple=True, metavar="VKEY",
              help="A witness's verifier key (`tracepay witness --print-vkey`; repeat).")
@click.option("--witness-quorum", type=int, default=0, show_default=True,
              help="Witness cosignatures a final checkpoint needs.")
def node_trust(nodes: tuple[str, ...], out_file: str, quorum: int | None, origin: str | None,
               witnesses: tuple[str, ...], witness_quorum: int) -> None:
    """Write a trust file naming each organisation node's public key (``node_keys``).

    \b
    Example:
        tracepay ledger node-trust --node retail_market=var/nodes/retail_market \\
            --node wholesale_market=var/nodes/wholesale_market --out var/node-trust.json
    """
    from trace_ledger.cosigned import DEFAULT_ORIGIN
    from trace_ledger.trust import inside, node_trust_document

    dirs = _node_dirs(nodes)
    if any(inside(Path(out_file), d) for d in dirs.values()):
        raise click.UsageError("--out lies inside a node directory")
    try:
        document = node_trust_document(dirs, quorum=quorum, origin=origin or DEFAULT_ORIGIN,
                                       witnesses=witnesses, witness_quorum=witness_quorum)
    except (FileNotFoundError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    click.echo(json.dumps({"trust_file": out_file}))


@click.command("verify-nodes")
@click.option("--node", "nodes", multiple=True, required=True, metavar="ORG=DIR",
              help="An organisation node's directory (repeat per node).")
@click.option("--trust", "trust_file", envvar="TRACEPAY_LEDGER_TRUST", required=True,
              type=click.Path(dir_okay=False, exists=True),
              help="Trust file naming the node keys (`tracepay ledger node-trust`).")
def verify_nodes_command(nodes: tuple[str, ...], trust_file: str) -> None:
    """Verify organisation nodes' directories, each against its pinned key, and compare
    them (same blocks, same roots). Prints JSON; exits 1 naming the first problem.

    \b
    Example:
        tracepay ledger verify-nodes --trust var/node-trust.json \\
            --node retail_market=var/nodes/retail_market \\
            --node wholesale_market=var/nodes/wholesale_market
    """
    from trace_ledger.trust import TrustFileError, inside, load_node_keys
    from trace_ledger.verify_jobs import verify_node_dirs

    dirs = _node_dirs(nodes)
    if any(inside(Path(trust_file), d) for d in dirs.values()):
        raise click.UsageError("--trust lies inside a node directory")
    try:
        keys = load_node_keys(Path(trust_file))
        report = verify_node_dirs(dirs, keys)
    except (TrustFileError, ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    if not report.ok:
        click.echo(f"ledger verification FAILED: {report.first}", err=True)
        sys.exit(1)
