"""The ledger: blocks of RFC 6962 Merkle-rooted leaves, Bloom-filtered trace keys and
Ed25519 signatures, stored by three organisations' nodes, each in its own SQLite file.

Public surface::

    ledger = Ledger.open(data_dir, block_max=500, block_timeout_s=0.2, endorse=None)
    ledger.submit([LedgerEntry(kind, record_id, record, trace_keys, visible_to)])
    ledger.flush(); ledger.locate(key); ledger.get(record_id); ledger.proof(record_id)
    ledger.head(); ledger.block(height); ledger.consistency(old, new); ledger.verify()
"""

from .entries import LedgerEntry, LedgerEntryError, Location, Receipt, StoredEntry
from .ledger import Endorse, Ledger, LedgerStoreError
from .verification import Problem, VerifyReport
from .verify_jobs import verify_data_dir

__all__ = ["Ledger", "LedgerEntry", "LedgerEntryError", "Location", "Receipt", "StoredEntry",
           "Endorse", "LedgerStoreError", "Problem", "VerifyReport", "verify_data_dir"]
