"""Manager web pages (login, devices, payments, settlement, reconciliation)."""

from __future__ import annotations

from flask import Blueprint

__all__ = ["blueprint"]

blueprint = Blueprint("manager", __name__, url_prefix="/manager")
