"""Payment channel adapters behind one interface (see base.py)."""
