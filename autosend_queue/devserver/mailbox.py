"""The emails the AutoSend sandbox accepted, kept in memory for the inbox page and for tests."""

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class ReceivedEmail:
    """One accepted ``/v1/mails/send`` or ``/v1/mails/bulk`` request.

    ``id`` is the ``emailId`` (send) or the ``batchId`` (bulk) the sandbox answered with.
    """

    id: str
    kind: Literal["send", "bulk"]
    payload: dict[str, Any]
    api_key: str
    received_at: float = field(default_factory=time.time)

    @property
    def recipients(self) -> list[dict[str, Any]]:
        """The main recipients: ``to`` for a send, ``recipients`` for a bulk."""
        if self.kind == "send":
            return [self.payload["to"]]
        return list(self.payload["recipients"])

    @property
    def subject(self) -> str | None:
        return self.payload.get("subject")

    @property
    def template_id(self) -> str | None:
        return self.payload.get("templateId")

    @property
    def html(self) -> str | None:
        return self.payload.get("html")

    @property
    def text(self) -> str | None:
        return self.payload.get("text")

    def to_api(self) -> dict[str, Any]:
        """The JSON form ``GET /_sandbox/emails`` answers with."""
        return {
            "id": self.id,
            "kind": self.kind,
            "receivedAt": self.received_at,
            "apiKey": self.api_key,
            "payload": self.payload,
        }


class Mailbox:
    """A thread-safe list of received emails, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._emails: list[ReceivedEmail] = []

    def add(self, email: ReceivedEmail) -> None:
        with self._lock:
            self._emails.append(email)

    def all(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self._emails)

    def find(self, email_id: str) -> ReceivedEmail | None:
        return next((email for email in self.all() if email.id == email_id), None)

    def clear(self) -> None:
        with self._lock:
            self._emails.clear()
