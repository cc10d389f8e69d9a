"""Alembic migrations of the gateway's database (both backends); run by ``migrate``."""
