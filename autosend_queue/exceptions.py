"""The app's exceptions: one small hierarchy, so callers can catch what they mean."""

from __future__ import annotations

from django.core.exceptions import ValidationError


class AutoSendQueueError(Exception):
    """Base class of every error this app raises on purpose."""


class InvalidPayload(AutoSendQueueError, ValidationError):
    """Input that AutoSend would reject, found before anything is written.

    ``field`` names the offending field (``cc[2]``, ``recipients[7].email``...) and ``rule`` is a
    short machine-readable code for the rule it broke (also the ValidationError ``code``).
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.field = field
        self.rule = rule
        self.detail = message
        super().__init__(f"{field}: {message}", code=rule)

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


class ConfigurationError(AutoSendQueueError):
    """The AUTOSEND_QUEUE settings cannot do what was asked."""


class SignatureError(AutoSendQueueError):
    """A QStash callback or AutoSend webhook failed verification; ``check`` names the rule."""

    def __init__(self, check: str, message: str = "") -> None:
        self.check = check
        super().__init__(f"{check}: {message}" if message else check)
