"""C2SP tlog-checkpoint bodies (c2sp.org/tlog-checkpoint): the tree head a note signs.

The body is the origin line (the log's unique name), the tree size in decimal, the
base64 root hash, each on its own line, then optional extension lines; signatures and
cosignatures are signed-note lines after it (:mod:`.signed_note`). A checkpoint is what
every organisation's node and any witness cosign, so that one root is final only when the
quorum of pinned keys signed that same body. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

__all__ = ["Checkpoint", "CheckpointError", "parse_checkpoint"]

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


class CheckpointError(ValueError):
    """Text that is not a checkpoint body."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or self.origin != self.origin.strip():
            raise CheckpointError(f"origin {self.origin!r} must be one non-empty line")
        if not 0 <= self.size < 2**64:
            raise CheckpointError(f"tree size {self.size} is not a u64")
        if len(self.root_hash) != 32:
            raise CheckpointError("root hash must be 32 bytes (SHA-256)")
        if any(not line or "\n" in line for line in self.extensions):
            raise CheckpointError("extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text: three lines, the extensions, each newline-terminated."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(),
                 *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (a note's text, signatures removed)."""
    if not text.endswith("\n"):
        raise CheckpointError("a checkpoint body ends with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has an origin, a size and a root hash line")
    origin, size, root, *extensions = lines
    if not _SIZE.fullmatch(size):
        raise CheckpointError(f"tree size {size!r} is not a decimal without leading zeros")
    try:
        root_hash = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise CheckpointError("root hash is not base64") from None
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))
