"""Django admin for the app: one module per model family."""

from autosend_queue.admin import emails, sequences  # noqa: F401
