"""An outside witness of the ledger (C2SP tlog-witness): a regulator or any fourth party
that runs no node cosigns a checkpoint only when the organisations' quorum signed it and it
extends, by a verified consistency proof, the last checkpoint the witness cosigned.

``state`` keeps that last checkpoint per origin durably (SQLite), ``app`` is the HTTP
service (``POST /add-checkpoint``), ``cli`` the ``tracepay witness`` command.
"""
