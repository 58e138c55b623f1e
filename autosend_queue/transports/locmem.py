"""A transport that keeps what would be published in memory, for tests.

Like ``django.core.mail.outbox``: every publish appends one entry per Email to ``outbox``,
the exact QStash message the qstash transport would send (url, headers, body, not_before...).
Clear it between tests with ``outbox.clear()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autosend_queue.transports.base import PublishResult, build_message

if TYPE_CHECKING:
    from autosend_queue.models import Email


@dataclass(frozen=True)
class PublishedMessage:
    email_uuid: str
    message_id: str
    message: dict[str, Any]


outbox: list[PublishedMessage] = []
cancelled: list[str] = []


class LocmemTransport:
    def publish(self, emails: Sequence[Email]) -> list[PublishResult]:
        results = []
        for email in emails:
            message_id = f"locmem-{email.uuid}"
            outbox.append(PublishedMessage(str(email.uuid), message_id, build_message(email)))
            results.append(PublishResult(message_id=message_id))
        return results

    def cancel(self, message_ids: Sequence[str]) -> int:
        cancelled.extend(message_ids)
        return len(message_ids)
