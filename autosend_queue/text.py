"""Making text from outside (AutoSend's answers, webhook fields) safe to store and show."""

from __future__ import annotations

from autosend_queue.conf import app_settings

REDACTED = "[redacted]"


def storable(text: str, limit: int) -> str:
    """``text`` without the API key, NUL characters or lone surrogates, at most ``limit`` long.

    PostgreSQL refuses NUL in text and SQLite refuses lone surrogates; an answer that echoes
    the API key must not put it in a row.
    """
    if app_settings.API_KEY:
        text = text.replace(app_settings.API_KEY, REDACTED)
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit]
