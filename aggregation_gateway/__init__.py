"""aggregation_gateway: devices, scan landing, payments and the MQTT link of tracepay.

The gateway holds the money path: it verifies each terminal's QR codes and sales, creates
orders at payment channels, records every channel result exactly once, tells terminals
the outcome and publishes confirmed trades for the ledger.
"""

from .app import create_app

__all__ = ["create_app"]
