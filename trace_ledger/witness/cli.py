"""``tracepay witness``: an outside witness of the ledger as one process."""

from __future__ import annotations

import logging
from pathlib import Path

import click

__all__ = ["witness", "KEY_NAME", "VKEY_NAME"]

log = logging.getLogger(__name__)

KEY_NAME = "witness_key.pem"
VKEY_NAME = "witness.vkey"


def _signer(directory: Path, name: str):  # type: ignore[no-untyped-def]
    from market_protocol.signed_note import COSIGNATURE_V1, NoteError, Signer
    from market_protocol.signing import load_or_create_private_key

    try:
        signer = Signer(name, load_or_create_private_key(directory / KEY_NAME), COSIGNATURE_V1)
        vkey = signer.verifier.vkey()
    except NoteError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from exc
    (directory / VKEY_NAME).write_text(vkey + "\n", encoding="utf-8")
    return signer


@click.command("witness")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="The witness's own directory: its key (0600), its state, its vkey.")
@click.option("--trust", "trust_file", type=click.Path(dir_okay=False, exists=True),
              help="Trust file naming the organisations' node keys and quorum "
                   "(`tracepay ledger node-trust`). Required unless --print-vkey.")
@click.option("--name", default="tracepay-witness", show_default=True,
              help="The witness's key name in the cosignature lines.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8790, show_default=True, type=int)
@click.option("--print-vkey", is_flag=True,
              help="Print the witness's verifier key (creating the key if needed) and exit.")
def witness(data_dir: str, trust_file: str | None, name: str, host: str, port: int,
            print_vkey: bool) -> None:
    """Run an outside witness (C2SP tlog-witness): cosign a ledger checkpoint only when the
    organisations' quorum signed it and it extends the last one this witness cosigned.

    \b
    Example:
        tracepay witness --data var/witness --print-vkey
        tracepay witness --data var/witness --trust var/node-trust.json --port 8790
    """
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    signer = _signer(directory, name)
    if print_vkey:
        click.echo(signer.verifier.vkey())
        return
    if trust_file is None:
        raise click.UsageError("give --trust FILE: the node keys a checkpoint must carry")

    from service_base.serving import serve_wsgi

    from ..trust import TrustFileError, inside, load_checkpoint_trust
    from .app import create_app
    from .state import STATE_NAME, WitnessState

    if inside(Path(trust_file), directory):
        raise click.UsageError("--trust lies inside the witness's directory")
    try:
        trust = load_checkpoint_trust(Path(trust_file))
    except TrustFileError as exc:
        raise click.UsageError(str(exc)) from exc
    state = WitnessState(directory / STATE_NAME)
    log.info("witness %s (%s) for %s, quorum %d of %s", name, signer.verifier.vkey(),
             trust.origin, trust.quorum, sorted(trust.node_keys))
    try:
        serve_wsgi(lambda: create_app(state, trust, signer), host, port, threads=4)
    finally:
        state.close()
