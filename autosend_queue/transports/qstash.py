"""Publish Emails through Upstash QStash with the official ``qstash`` SDK.

One ``/v2/batch`` call per 100 Emails. The SDK's own ``batch_json`` raises ``KeyError`` when one
entry of the answer is an error, losing the ids of the entries QStash accepted; so the request is
built by the SDK's batch helpers and sent with the SDK's HTTP client, and the answer is read here,
entry by entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
from qstash import QStash
from qstash.errors import QStashError, RateLimitExceededError
from qstash.message import convert_to_batch_messages, prepare_batch_message_body

from autosend_queue.conf import app_settings
from autosend_queue.transports.base import PublishResult, build_message

if TYPE_CHECKING:
    from autosend_queue.models import Email

# Statuses for which QStash refused the message itself; others (401, 429, 5xx) are about the
# account or the moment, and the Email stays pending until a flush.
PERMANENT_STATUSES = frozenset({400, 404, 413, 422})
STATUS_IN_SDK_ERROR = re.compile(r"status: (\d{3})")


class QStashTransport:
    def __init__(self) -> None:
        self.client = QStash(
            app_settings.QSTASH_TOKEN,
            base_url=app_settings.QSTASH_URL,
            retry={"retries": 2, "backoff": lambda attempt: 200 * (attempt + 1)},
        )
        # The SDK's client waits up to 600 s; a publish on commit must not hold a worker that long.
        self.client.http._client.timeout = httpx.Timeout(app_settings.HTTP_TIMEOUT, connect=5.0)

    def publish(self, emails: Sequence[Email]) -> list[PublishResult]:
        messages = [build_message(email) for email in emails]
        body = prepare_batch_message_body(convert_to_batch_messages(messages))  # type: ignore[arg-type]
        try:
            answer = self.client.http.request(
                path="/v2/batch",
                method="POST",
                headers={"Content-Type": "application/json"},
                body=body,
            )
        except (QStashError, httpx.HTTPError) as error:
            return self._after_batch_error(emails, error)
        return [_entry_result(entry) for entry in _entries(answer, len(emails))]

    def cancel(self, message_ids: Sequence[str]) -> int:
        if not message_ids:
            return 0
        return self.client.message.cancel_many(list(message_ids))

    def _after_batch_error(self, emails: Sequence[Email], error: Exception) -> list[PublishResult]:
        status = _status_of(error)
        if status in PERMANENT_STATUSES and len(emails) > 1:
            # One bad message fails the whole batch; publish one by one to find it.
            return [result for email in emails for result in self.publish([email])]
        message = _describe(error, status)
        return [
            PublishResult(error=message, permanent=status in PERMANENT_STATUSES) for _ in emails
        ]


def _entries(answer: Any, expected: int) -> list[Any]:
    if not isinstance(answer, list) or len(answer) != expected:
        return [{"error": f"unexpected answer from QStash: {answer!r:.200}"}] * expected
    return answer


def _entry_result(entry: Any) -> PublishResult:
    if isinstance(entry, dict) and entry.get("messageId"):
        return PublishResult(
            message_id=str(entry["messageId"]), deduplicated=bool(entry.get("deduplicated"))
        )
    error = entry.get("error") if isinstance(entry, dict) else None
    return PublishResult(error=f"QStash refused the message: {error or entry!r}", permanent=True)


def _status_of(error: Exception) -> int | None:
    if isinstance(error, RateLimitExceededError):
        return 429
    match = STATUS_IN_SDK_ERROR.search(str(error)) if isinstance(error, QStashError) else None
    return int(match.group(1)) if match else None


def _describe(error: Exception, status: int | None) -> str:
    if status is None:
        return f"QStash unreachable: {type(error).__name__}: {error}"
    return f"QStash answered {status}: {error}"
