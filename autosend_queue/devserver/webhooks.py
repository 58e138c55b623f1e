"""AutoSend-style webhooks from the sandbox: signed event posts, retried, in order per recipient."""

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from .scheduler import Scheduler
from .signing import webhook_signature

logger = logging.getLogger(__name__)

# AutoSend retries a webhook about three more times, after 5, 10 and 20 seconds.
RETRY_DELAYS_SECONDS = (5.0, 10.0, 20.0)
WEBHOOK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class WebhookEvent:
    """One event to post; its body and delivery id stay the same across retries."""

    event_type: str
    body: bytes
    delivery_id: str

    @classmethod
    def create(cls, event_type: str, data: dict[str, Any]) -> "WebhookEvent":
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = json.dumps({"type": event_type, "createdAt": created_at, "data": data}).encode()
        return cls(event_type, body, f"whd_{uuid.uuid4().hex}")


FIRST_EVENT_DELAY_SECONDS = 0.5


class WebhookSender:
    """Posts chains of events to a webhook URL, one chain after the other event by event."""

    def __init__(self, scheduler: Scheduler, client: httpx.Client, time_scale: float) -> None:
        self._scheduler = scheduler
        self._client = client
        self._time_scale = time_scale

    def send_in_order(self, url: str, secret: str, events: list[WebhookEvent]) -> None:
        """Post ``events`` one by one; each starts once the one before it succeeded or gave up.

        The first waits ``FIRST_EVENT_DELAY_SECONDS``, as AutoSend reports an email only after
        handing it on: by then QStash has had the answer and called the publisher back.
        """
        if events:
            due = time.monotonic() + FIRST_EVENT_DELAY_SECONDS
            self._scheduler.call_at(due, lambda: self._attempt(url, secret, events, attempt=0))

    def _attempt(self, url: str, secret: str, events: list[WebhookEvent], attempt: int) -> None:
        event, *later_events = events
        status = self._post(url, secret, event)
        logger.info(
            "webhook %s %s to %s: status %s (attempt %d)",
            event.event_type,
            event.delivery_id,
            url,
            status or "no answer",
            attempt + 1,
        )
        if not 200 <= status < 300 and attempt < len(RETRY_DELAYS_SECONDS):
            due = time.monotonic() + RETRY_DELAYS_SECONDS[attempt] * self._time_scale
            self._scheduler.call_at(due, lambda: self._attempt(url, secret, events, attempt + 1))
        elif later_events:
            self._scheduler.call_soon(lambda: self._attempt(url, secret, later_events, attempt=0))

    def _post(self, url: str, secret: str, event: WebhookEvent) -> int:
        """POST one event; the answer's status, or 0 when none came."""
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Signature": webhook_signature(secret, event.body),
            "X-Webhook-Event": event.event_type,
            "X-Webhook-Delivery-Id": event.delivery_id,
            "X-Webhook-Timestamp": str(int(time.time() * 1000)),
            "User-Agent": "AutoSend-Webhooks (devserver sandbox)",
        }
        try:
            response = self._client.post(
                url, content=event.body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as error:
            logger.warning("webhook to %s got no answer: %s", url, error)
            return 0
        return response.status_code
