"""``tracepay ledger checkpoint`` (the collector) and the node-directory branch of
``tracepay ledger verify`` (against a cosigned checkpoint): thin shells over
:mod:`.collector` and :mod:`.checkpoint_verify`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["checkpoint", "verify_node_checkpoint"]


def _trust(trust_file: str):  # type: ignore[no-untyped-def]
    from .trust import TrustFileError, load_checkpoint_trust

    try:
        return load_checkpoint_trust(Path(trust_file))
    except TrustFileError as exc:
        raise click.UsageError(str(exc)) from exc


def _urls(text: str) -> list[str]:
    return [u.strip() for u in text.split(",") if u.strip()]


@click.command("checkpoint")
@click.option("--nodes", required=True, help="Comma-separated read API URLs of the nodes.")
@click.option("--trust", "trust_file", envvar="TRACEPAY_LEDGER_TRUST", required=True,
              type=click.Path(dir_okay=False, exists=True),
              help="Trust file pinning the node keys and the quorum "
                   "(`tracepay ledger node-trust`).")
@click.option("--witness", "witnesses", multiple=True, metavar="URL",
              help="A witness (`tracepay witness`) to cosign the merged checkpoint (repeat).")
@click.option("--size", type=int, default=None,
              help="Tree size to collect [the smallest height among the nodes].")
@click.option("--out", "out_file", default=None, type=click.Path(dir_okay=False),
              help="Write the cosigned note to this file.")
def checkpoint(nodes: str, trust_file: str, witnesses: tuple[str, ...], size: int | None,
               out_file: str | None) -> None:
    """Collect every node's signed checkpoint at one size and merge the signatures that
    verify against the trust file's pinned keys into one C2SP note.

    Prints JSON (the note and who signed it); exits 1 unless the checkpoint is final (the
    trust file's quorum of organisations, and of witnesses, signed the same body).

    \b
    Example:
        tracepay ledger checkpoint --trust var/node-trust.json \\
            --nodes http://127.0.0.1:8701,http://127.0.0.1:8702,http://127.0.0.1:8703 \\
            --out var/checkpoint.note
    """
    from .collector import collect, witness_cosign
    from .cosigned import check_cosigned

    trust = _trust(trust_file)
    urls = _urls(nodes)
    collected = collect(urls, trust, size=size)
    note, summary = collected["note"], collected["summary"]
    if note is not None and witnesses:
        events = []
        for url in witnesses:
            lines, what = witness_cosign(url, note, summary["size"], urls)
            events.append(what)
            if lines is not None:
                note = note + lines
        summary["witnesses"] = events
        summary.update(check_cosigned(note, trust).to_dict())
    if note is not None and out_file:
        Path(out_file).parent.mkdir(parents=True, exist_ok=True)
        Path(out_file).write_text(note, encoding="utf-8")
    click.echo(json.dumps({**summary, "note": note}, ensure_ascii=False))
    if not summary["final"]:
        click.echo(f"checkpoint NOT final: signed by {summary.get('signed_by')}", err=True)
        sys.exit(1)


def verify_node_checkpoint(pairs: tuple[str, ...], trust_file: str,
                           checkpoint_file: str | None, nodes: str | None) -> None:
    """``tracepay ledger verify --node ORG=DIR [--node ...] --trust FILE --checkpoint FILE``:
    one directory gives its own report; several give one each under ``nodes``."""
    from .checkpoint_verify import (
        verify_node_against_checkpoint,
        verify_nodes_against_checkpoint,
    )
    from .trust import inside

    if checkpoint_file is None:
        raise click.UsageError("--node needs --checkpoint FILE (a cosigned checkpoint note "
                               "from `tracepay ledger checkpoint`)")
    dirs = {}
    for pair in pairs:
        org, sep, directory = pair.partition("=")
        if not sep or not org or not directory:
            raise click.UsageError(f"--node {pair!r}: expected ORG=DIR")
        dirs[org] = Path(directory)
    for option, path in (("--trust", trust_file), ("--checkpoint", checkpoint_file)):
        if any(inside(Path(path), d) for d in dirs.values()):
            raise click.UsageError(f"{option} lies inside a node directory it checks")
    trust = _trust(trust_file)
    unknown = sorted(set(dirs) - set(trust.node_keys))
    if unknown:
        raise click.UsageError(f"the trust file pins no key for {unknown}")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {org: Ed25519PublicKey.from_public_bytes(trust.node_keys[org].public_key)
            for org in dirs}
    try:
        note = Path(checkpoint_file).read_text(encoding="utf-8")
        if len(dirs) == 1:
            org, node_dir = next(iter(dirs.items()))
            result = verify_node_against_checkpoint(org, node_dir, keys[org], trust, note,
                                                    _urls(nodes or ""))
        else:
            result = verify_nodes_against_checkpoint(dirs, keys, trust, note,
                                                     _urls(nodes or ""))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read {checkpoint_file} or a node store: {exc}") from exc
    result["trust_file"] = trust_file
    click.echo(json.dumps(result, ensure_ascii=False))
    if not result["ok"]:
        click.echo(f"ledger verification FAILED: {result['first_problem']}", err=True)
        sys.exit(1)
