"""Send a Django project's emails to AutoSend through Upstash QStash.

The public API is importable from here; the names resolve lazily so that importing the package
does not need the app registry to be ready.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autosend_queue.outbox import cancel, resend, send_bulk, send_email
    from autosend_queue.sequences import enroll

__all__ = ["cancel", "enroll", "resend", "send_bulk", "send_email"]

_LOCATIONS = {
    "send_email": "autosend_queue.outbox",
    "send_bulk": "autosend_queue.outbox",
    "cancel": "autosend_queue.outbox",
    "resend": "autosend_queue.outbox",
    "enroll": "autosend_queue.sequences",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'autosend_queue' has no attribute {name!r}")
