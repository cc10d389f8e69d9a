"""consumer_app: the shopper's pages -- pay hand-off, receipt, trace with in-browser proof
check, a stall's stock, and the camera scan page.

It owns no data: every page reads the gateway (payments) or the ledger bridge (trace, keys,
stock) over HTTP, so it can run anywhere those answer.
"""

from .app import create_app

__all__ = ["create_app"]
