"""Parts of ``bench/ledger_cluster.py`` (kept out of ``bench/*.py``, which ``make bench`` runs)."""
