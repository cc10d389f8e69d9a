"""Parts of ``bench/pipeline.py`` (kept out of ``bench/*.py``, which ``make bench`` runs)."""
