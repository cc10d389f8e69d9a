"""Parts of ``bench/gateway_scale.py`` (kept out of ``bench/*.py``, which ``make bench`` runs)."""
