"""sandbox_platform: a stand-in third-party payment platform for local runs and tests.

It behaves like the real ones towards a merchant: signed order creation, a hosted checkout
page, signed asynchronous notifications retried until acknowledged, order query and close,
refunds and a daily statement file. See docs/sandbox-platform.md.
"""

from .app import create_app, open_state
from .notifier import Notifier
from .notify_schedule import NAMED_SCHEDULES, parse_schedule
from .settings import SETTINGS, resolve_settings

__all__ = ["create_app", "open_state", "Notifier", "NAMED_SCHEDULES", "parse_schedule",
           "SETTINGS", "resolve_settings"]
