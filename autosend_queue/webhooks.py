"""AutoSend's delivery webhooks: verify, normalize, record once, and advance the delivery status.

The view stacks ``verify_autosend_request`` in ``views.verified_json_view``: the body is read within
``MAX_BODY_SIZE``, its HMAC-SHA256 signature is checked against ``WEBHOOK_SECRET`` before anything
in it is read, and only then is it parsed and handed to ``parse_event`` and ``record``.

Delivery status only moves forward along ``PRECEDENCE``, with a conditional UPDATE
(``WHERE delivery_status IN <lower ones>``), because AutoSend's retries arrive out of order:
a late ``delivered`` never hides an ``opened``, and nothing hides a bounce or an opt-out. Every
event is still appended to the Email's log and sent as the ``email_event`` signal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from autosend_queue import sequences, states
from autosend_queue.conf import app_settings
from autosend_queue.exceptions import SignatureError
from autosend_queue.models import DeliveryStatus, Email, EmailEvent, EmailRecipient, Enrollment
from autosend_queue.signals import email_event
from autosend_queue.text import storable

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Webhook-Signature"
EVENT_HEADER = "X-Webhook-Event"
DELIVERY_ID_HEADER = "X-Webhook-Delivery-Id"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_PREFIX = "hmac-sha256="

# Later in the tuple wins. Bounces and opt-outs come last: they are what a sender must act on,
# and an open reported after an unsubscribe must not hide it.
PRECEDENCE: tuple[str, ...] = (
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.SENT,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.OPENED,
    DeliveryStatus.CLICKED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.UNSUBSCRIBED,
    DeliveryStatus.SPAM_REPORTED,
)

STATUS_FOR_TYPE: dict[str, str] = {
    "email.sent": DeliveryStatus.SENT,
    "email.delivered": DeliveryStatus.DELIVERED,
    "email.deferred": DeliveryStatus.DEFERRED,
    "email.bounced": DeliveryStatus.BOUNCED,
    "email.opened": DeliveryStatus.OPENED,
    "email.clicked": DeliveryStatus.CLICKED,
    "email.spam_reported": DeliveryStatus.SPAM_REPORTED,
    "email.unsubscribed": DeliveryStatus.UNSUBSCRIBED,
    "email.group_unsubscribed": DeliveryStatus.UNSUBSCRIBED,
}

OPTED_OUT = frozenset({DeliveryStatus.UNSUBSCRIBED, DeliveryStatus.SPAM_REPORTED})

# Webhook timestamps above this are milliseconds (newer docs); below, seconds (older docs).
# 10**11 seconds is the year 5138; 10**11 milliseconds is 1973.
MILLISECONDS_THRESHOLD = 10**11


class Outcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    UNKNOWN_EMAIL = "unknown_email"


@dataclass(frozen=True)
class WebhookEvent:
    """One AutoSend webhook, normalized from either payload shape; ``raw`` is the parsed body."""

    type: str
    delivery_status: str | None
    email_id: str
    batch_id: str
    recipient: str
    bounce_type: str
    occurred_at: datetime | None
    delivery_id: str | None
    raw: Mapping[str, Any]

    def as_event_data(self) -> dict[str, Any]:
        """What the EmailEvent keeps: the normalized fields that are set, without the raw body."""
        data = {
            "type": self.type,
            "delivery_status": self.delivery_status,
            "email_id": self.email_id,
            "batch_id": self.batch_id,
            "recipient": self.recipient,
            "bounce_type": self.bounce_type,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
        }
        return {key: value for key, value in data.items() if value}


def verify_autosend_request(request: HttpRequest, raw_body: bytes) -> None:
    """``verify_signature`` in the ``verify(request, raw_body)`` shape views stack."""
    verify_signature(raw_body, request.headers.get(SIGNATURE_HEADER))


def verify_signature(body: bytes, signature: str | None) -> None:
    """Raise ``SignatureError`` unless ``signature`` is the hex HMAC-SHA256 of ``body``.

    The hex may be in either case and carry an ``hmac-sha256=`` prefix. Without a configured
    secret every webhook is refused.
    """
    secret = app_settings.WEBHOOK_SECRET
    if not secret:
        logger.error(
            "autosend_queue: AUTOSEND_QUEUE['WEBHOOK_SECRET'] is not set; "
            "every AutoSend webhook is refused"
        )
        raise SignatureError("secret_not_configured", "WEBHOOK_SECRET is empty")
    if not signature:
        raise SignatureError("missing_signature", f"no {SIGNATURE_HEADER} header")
    provided = signature.strip().lower().removeprefix(SIGNATURE_PREFIX)
    if not hmac.compare_digest(sign(body, secret).encode(), provided.encode()):
        raise SignatureError("signature_mismatch", "the body does not match its signature")


def sign(body: bytes, secret: str) -> str:
    """The ``X-Webhook-Signature`` AutoSend sends for ``body`` (for tests and local tools)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_event(raw: Mapping[str, Any], headers: Mapping[str, str]) -> WebhookEvent:
    """Normalize a verified body (``type``/``createdAt`` or ``event``/``timestamp`` shape)."""
    data: Mapping[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else {}
    event_type = _first_text([raw.get("type"), raw.get("event"), headers.get(EVENT_HEADER)], 100)
    return WebhookEvent(
        type=event_type,
        delivery_status=STATUS_FOR_TYPE.get(event_type),
        email_id=_text(data.get("emailId"), 100),
        batch_id=_text(data.get("batchId"), 100),
        recipient=_recipient(data),
        bounce_type=_bounce_type(data),
        occurred_at=_occurred_at(raw, headers),
        delivery_id=_text(headers.get(DELIVERY_ID_HEADER), 255) or None,
        raw=raw,
    )


def _text(value: Any, limit: int) -> str:
    """``value`` if it is a string, made storable and trimmed."""
    return storable(value.strip(), limit) if isinstance(value, str) else ""


def _first_text(values: list[Any], limit: int) -> str:
    return next((text for text in (_text(value, limit) for value in values) if text), "")


def _recipient(data: Mapping[str, Any]) -> str:
    to = data.get("to")
    address = to.get("email") if isinstance(to, dict) else to
    return _first_text([address, data.get("email")], 254).lower()


def _bounce_type(data: Mapping[str, Any]) -> str:
    bounce = data.get("bounce")
    nested = bounce.get("type") if isinstance(bounce, dict) else None
    return _first_text([data.get("bounceType"), nested], 50)


def _occurred_at(raw: Mapping[str, Any], headers: Mapping[str, str]) -> datetime | None:
    candidates = (raw.get("createdAt"), raw.get("timestamp"), headers.get(TIMESTAMP_HEADER))
    return next((moment for moment in map(_instant, candidates) if moment), None)


def _instant(value: Any) -> datetime | None:
    """An aware datetime from an ISO string or an epoch in seconds or milliseconds, or None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _iso_instant(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if value >= MILLISECONDS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _iso_instant(value: str) -> datetime | None:
    try:
        moment = parse_datetime(value.strip())
    except ValueError:
        return None
    if moment is None or timezone.is_aware(moment):
        return moment
    return timezone.make_aware(moment, UTC)


def record(event: WebhookEvent) -> Outcome:
    """Apply ``event`` once per delivery id: log it, advance the status, cancel drips on opt-out.

    A constant number of queries: the lookup, the event insert, two conditional UPDATEs, and on
    an opt-out the cancellation of that recipient's remaining drip Emails.
    """
    email = _find_email(event)
    if email is None:
        _record_unknown_email(event)
        return Outcome.UNKNOWN_EMAIL
    try:
        with transaction.atomic():
            EmailEvent.objects.create(
                email=email,
                kind=EmailEvent.Kind.WEBHOOK,
                data=event.as_event_data(),
                delivery_id=event.delivery_id,
            )
            advanced = _advance_delivery_status(email, event)
            if event.delivery_status in OPTED_OUT:
                cancel_remaining_drips(event.recipient or email.to_email)
    except IntegrityError:
        if not _already_recorded(event.delivery_id):
            raise
        logger.info("autosend_queue: webhook delivery %s seen before", event.delivery_id)
        return Outcome.DUPLICATE
    if advanced and event.delivery_status is not None:
        email.delivery_status = event.delivery_status
    email_event.send(sender=Email, email=email, event=event)
    return Outcome.RECORDED


def _record_unknown_email(event: WebhookEvent) -> None:
    """Log it; an opt-out still stops the drips to that address (AutoSend may omit emailId)."""
    logger.info(
        "autosend_queue: webhook %s for an unknown email (emailId=%r, batchId=%r)",
        event.type,
        event.email_id,
        event.batch_id,
    )
    if event.delivery_status in OPTED_OUT and event.recipient:
        with transaction.atomic():
            cancel_remaining_drips(event.recipient)


def _find_email(event: WebhookEvent) -> Email | None:
    """A single send by its ``emailId``, or a bulk chunk by its ``batchId`` and the recipient."""
    match = Q()
    if event.email_id:
        match |= Q(autosend_email_id=event.email_id)
    if event.batch_id and event.recipient:
        match |= Q(autosend_batch_id=event.batch_id, recipients__address=event.recipient)
    if not match:
        return None
    return Email.objects.filter(match).first()


def _already_recorded(delivery_id: str | None) -> bool:
    return delivery_id is not None and EmailEvent.objects.filter(delivery_id=delivery_id).exists()


def _advance_delivery_status(email: Email, event: WebhookEvent) -> bool:
    """Raise the Email's and the recipient's delivery status where ``event`` outranks them.

    The Email carries the highest status reached by any of its recipients; each EmailRecipient
    carries its own. Returns whether the Email's status moved.
    """
    status = event.delivery_status
    if status is None:
        return False
    lower = PRECEDENCE[: PRECEDENCE.index(status)]
    moved = Email.objects.filter(pk=email.pk, delivery_status__in=lower).update(
        delivery_status=status, updated_at=timezone.now()
    )
    EmailRecipient.objects.filter(
        email_id=email.pk, address=event.recipient or email.to_email, delivery_status__in=lower
    ).update(delivery_status=status)
    return moved == 1


def cancel_remaining_drips(address: str) -> int:
    """End the enrollments with Emails still to go to ``address``, through the sequences' cancel
    path; return how many Emails were cancelled."""
    in_flight = Email.objects.filter(
        Q(to_email=address)
        | Q(pk__in=EmailRecipient.objects.filter(address=address).values("email_id")),
        enrollment__isnull=False,
        status__in=states.CANCELLABLE,
    )
    enrollment_ids = set(in_flight.values_list("enrollment_id", flat=True))
    if not enrollment_ids:
        return 0
    enrollments = Enrollment.objects.filter(pk__in=enrollment_ids)
    return sequences.cancel_enrollments(enrollments).emails
