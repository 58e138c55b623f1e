"""What every transport shares: the interface, its result type, and the QStash message for an Email.

The message is built here, once, so the locmem transport records exactly what the QStash
transport would send.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.urls import reverse
from django.utils import timezone

from autosend_queue.conf import app_settings
from autosend_queue.models import EmailKind

if TYPE_CHECKING:
    from autosend_queue.models import Email

ENDPOINTS = {EmailKind.SINGLE: "/mails/send", EmailKind.BULK: "/mails/bulk"}


@dataclass(frozen=True)
class PublishResult:
    """What became of one Email's publish: a QStash message id, or an error and its kind."""

    message_id: str = ""
    deduplicated: bool = False
    error: str = ""
    permanent: bool = False

    @property
    def accepted(self) -> bool:
        return bool(self.message_id)


class Transport(Protocol):
    def publish(self, emails: Sequence[Email]) -> list[PublishResult]:
        """Publish up to 100 Emails in one call; one result per Email, in order."""

    def cancel(self, message_ids: Sequence[str]) -> int:
        """Cancel messages QStash has not delivered yet; return how many it cancelled."""


def build_message(email: Email) -> dict[str, Any]:
    """The SDK's batch entry (``BatchJsonRequest``) that delivers ``email`` to AutoSend."""
    headers = {"Authorization": f"Bearer {app_settings.API_KEY}"}
    if app_settings.PROJECT_ID:
        headers["x-project-id"] = app_settings.PROJECT_ID
    message: dict[str, Any] = {
        "url": app_settings.API_URL.rstrip("/") + ENDPOINTS[EmailKind(email.kind)],
        "method": "POST",
        "body": email.payload,
        "headers": headers,
        "retries": app_settings.RETRIES,
        "callback": callback_url(email, failure=False),
        "failure_callback": callback_url(email, failure=True),
        "deduplication_id": str(email.uuid),
        "flow_control": {
            "key": flow_control_key(app_settings.API_KEY),
            "rate": app_settings.RATE_LIMIT,
            "parallelism": app_settings.RATE_LIMIT,
            "period": 1,
        },
    }
    if email.scheduled_at > timezone.now():
        # Rounded up: QStash takes whole seconds, and an email must not leave before its time.
        message["not_before"] = math.ceil(email.scheduled_at.timestamp())
    return message


def callback_url(email: Email, *, failure: bool) -> str:
    name = "autosend_queue:failure_callback" if failure else "autosend_queue:callback"
    return app_settings.public_url_for(reverse(name, kwargs={"email_uuid": email.uuid}))


def flow_control_key(api_key: str) -> str:
    """One flow-control key per AutoSend API key, without revealing the key."""
    return "autosend-" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
