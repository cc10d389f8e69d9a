"""The node's checkpoint routes: its own signature on the C2SP checkpoint of the blocks it
has validated and stored, and inclusion proofs of single block hashes in that tree.

``GET /v1/checkpoint?size=N`` (default: the node's height) answers a signed note
(``text/plain``) carrying ONE signature line, this node's own Ed25519 key under its
organisation's key name. A node signs size N only once it holds N blocks it committed
itself: asking for more answers 409 with the reason, so a node never vouches for a tree it
has not checked. Any N up to its height can be signed (the root over the first N blocks),
which lets a collector get every organisation's signature on one size.

``GET /v1/block-proof/<height>?size=N`` answers the block hash at ``height`` and its
RFC 6962 audit path in the tree of the first N block hashes: what a verifier uses to find,
against a cosigned root, the first block of a store that differs.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from market_protocol import merkle
from market_protocol.http_errors import ApiError
from market_protocol.signed_note import Signer, sign_note

from ..cosigned import DEFAULT_ORIGIN, checkpoint_for, node_key_name
from .chain import NodeChain

__all__ = ["install_checkpoint_routes", "checkpoint_note"]

NOTE_TYPE = "text/plain; charset=utf-8"


def checkpoint_note(chain: NodeChain, origin: str, size: int) -> str:
    """The checkpoint of the node's first ``size`` blocks, signed by this node only;
    ValueError when the node holds fewer blocks."""
    hashes = chain.block_hashes()
    if not 0 <= size <= len(hashes):
        raise ValueError(f"this node has validated and stored {len(hashes)} blocks, "
                         f"not {size}: it signs no tree it has not checked")
    body = checkpoint_for(origin, hashes[:size]).body()
    return sign_note(body, [Signer(node_key_name(chain.org), chain.key)])


def _size_arg(default: int) -> int:
    value = request.args.get("size")
    if value is None:
        return default
    if not value.isdigit() or len(value) > 19:
        raise ApiError(400, "bad_request", "size must be a non-negative integer")
    return int(value)


def install_checkpoint_routes(app: Flask, chain: NodeChain,
                              origin: str = DEFAULT_ORIGIN) -> None:
    """Add the checkpoint routes to the node's read API."""

    @app.get("/v1/checkpoint")
    def checkpoint():  # type: ignore[no-untyped-def]
        size = _size_arg(len(chain.block_hashes()))
        try:
            note = checkpoint_note(chain, origin, size)
        except ValueError as exc:
            raise ApiError(409, "not_validated", str(exc),
                           height=len(chain.block_hashes())) from exc
        return Response(note, mimetype="text/plain", content_type=NOTE_TYPE)

    @app.get("/v1/block-proof/<int:height>")
    def block_proof(height: int):  # type: ignore[no-untyped-def]
        hashes = chain.block_hashes()
        size = _size_arg(len(hashes))
        if size > len(hashes):
            raise ApiError(409, "not_validated", f"this node holds {len(hashes)} blocks, "
                           f"not {size}", height=len(hashes))
        if not 1 <= height <= size:
            raise ApiError(404, "not_found", f"no block {height} in a tree of {size}")
        leaves = [merkle.leaf_hash(h) for h in hashes[:size]]
        path = merkle.inclusion_proof(leaves, height - 1)
        return jsonify({"height": height, "size": size, "block_hash": hashes[height - 1].hex(),
                        "proof": [h.hex() for h in path]})
