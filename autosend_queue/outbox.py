"""The outbox: write Email rows in the caller's transaction, publish them once it commits.

This is the one module that publishes. ``send_email``/``send_bulk``/``resend`` write rows and ask
for a publish on commit; ``flush`` publishes what is still pending (QStash was down, or the email
was too far in the future); ``publish`` is what both call. The network is never called inside the
caller's transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from autosend_queue import payloads, states
from autosend_queue.conf import app_settings
from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailEvent, EmailKind, EmailRecipient, EmailStatus
from autosend_queue.text import storable
from autosend_queue.transports import PublishResult, get_transport

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from autosend_queue.models import Enrollment

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
ERROR_LIMIT = 1000
Delay = timedelta | int | float


@dataclass
class PublishSummary:
    queued: int = 0
    deferred: int = 0
    failed: int = 0
    calls: int = 0

    def add(self, other: PublishSummary) -> None:
        self.queued += other.queued
        self.deferred += other.deferred
        self.failed += other.failed
        self.calls += other.calls


class _WaitingForCommit(threading.local):
    """Email ids written in this thread's open transaction, per database alias."""

    def __init__(self) -> None:
        self.ids: dict[str, set[int]] = {}


_waiting_for_commit = _WaitingForCommit()


def send_email(
    to: payloads.AddressInput,
    *,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    template_id: str | None = None,
    dynamic_data: Mapping[str, Any] | None = None,
    from_email: payloads.AddressInput | None = None,
    cc: Iterable[payloads.AddressInput] | None = None,
    bcc: Iterable[payloads.AddressInput] | None = None,
    reply_to: payloads.AddressInput | None = None,
    unsubscribe_group_id: str | None = None,
    delay: Delay | None = None,
    send_at: datetime | None = None,
    dedup_key: str | None = None,
    user: AbstractBaseUser | None = None,
) -> Email:
    """Queue one email to AutoSend's ``/mails/send``; it is published when the transaction commits.

    Raises ``InvalidPayload`` (a ``ValidationError``) before writing anything if AutoSend would
    refuse the body. With a ``dedup_key`` already used, returns that Email and publishes nothing.
    """
    payload = payloads.build_send_payload(
        to=to,
        from_email=from_email,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        subject=subject,
        html=html,
        text=text,
        template_id=template_id,
        dynamic_data=dynamic_data,
        unsubscribe_group_id=unsubscribe_group_id,
    )
    email = new_email(
        payload,
        EmailKind.SINGLE,
        schedule_time(delay, send_at),
        user=user,
        idempotency_key=dedup_key,
    )
    (written,) = create_once([email])
    return written


def send_bulk(
    recipients: Iterable[payloads.AddressInput],
    *,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    template_id: str | None = None,
    dynamic_data: Mapping[str, Any] | None = None,
    from_email: payloads.AddressInput | None = None,
    reply_to: payloads.AddressInput | None = None,
    unsubscribe_group_id: str | None = None,
    delay: Delay | None = None,
    send_at: datetime | None = None,
    dedup_key: str | None = None,
    user: AbstractBaseUser | None = None,
) -> list[Email]:
    """Queue a send to many recipients through ``/mails/bulk``: one Email per 100 recipients.

    Each recipient may carry its own ``dynamicData``. A ``dedup_key`` already used returns the
    Emails written with it and publishes nothing.
    """
    bodies = payloads.build_bulk_payloads(
        recipients,
        from_email=from_email,
        reply_to=reply_to,
        subject=subject,
        html=html,
        text=text,
        template_id=template_id,
        dynamic_data=dynamic_data,
        unsubscribe_group_id=unsubscribe_group_id,
    )
    scheduled_at = schedule_time(delay, send_at)
    keys = [None if dedup_key is None else f"{dedup_key}:{index}" for index in range(len(bodies))]
    return create_once(
        [
            new_email(body, EmailKind.BULK, scheduled_at, user=user, idempotency_key=key)
            for body, key in zip(bodies, keys, strict=True)
        ]
    )


def resend(email: Email) -> Email:
    """Send ``email``'s body again now, as a new Email linked to it; its dedup key is not reused."""
    copy = new_email(
        email.payload,
        EmailKind(email.kind),
        timezone.now(),
        user_id=email.user_id,
        resent_from=email,
        sequence_id=email.sequence_id,
        sequence_step_id=email.sequence_step_id,
        enrollment_id=email.enrollment_id,
    )
    with transaction.atomic():
        (created,) = create_emails([copy])
        EmailEvent.objects.create(
            email=email, kind=EmailEvent.Kind.RESENT, data={"resend": str(created.uuid)}
        )
    return created


def cancel(emails: Email | Enrollment | Iterable[Email] | QuerySet[Email]) -> int:
    """Cancel Emails not sent yet (or an Enrollment's remaining Emails); return how many.

    Pending ones simply never publish; those QStash holds are cancelled there, in one call per
    100, once the transaction commits.
    """
    from autosend_queue.models import Enrollment

    if isinstance(emails, Enrollment):
        from autosend_queue.sequences import cancel_enrollment

        return cancel_enrollment(emails)
    if isinstance(emails, Email):
        emails = [emails]
    if not isinstance(emails, QuerySet):
        emails = Email.objects.filter(pk__in=[email.pk for email in emails])
    with transaction.atomic():
        rows = list(
            emails.filter(status__in=states.CANCELLABLE)
            .select_for_update()
            .values_list("pk", "qstash_message_id")
        )
        states.transition([pk for pk, _ in rows], states.CANCELLED)
        EmailEvent.objects.bulk_create(
            EmailEvent(email_id=pk, kind=EmailEvent.Kind.CANCELLED) for pk, _ in rows
        )
        message_ids = [message_id for _, message_id in rows if message_id]
        if message_ids:
            transaction.on_commit(lambda: cancel_in_qstash(message_ids))
    return len(rows)


def cancel_in_qstash(message_ids: Sequence[str]) -> None:
    for start in range(0, len(message_ids), BATCH_SIZE):
        chunk = message_ids[start : start + BATCH_SIZE]
        try:
            get_transport().cancel(chunk)
        except Exception:
            logger.exception("autosend_queue: QStash did not cancel %d messages", len(chunk))


def schedule_time(delay: Delay | None, send_at: datetime | None) -> datetime:
    """The instant to send at: now, now + ``delay``, or ``send_at`` (aware)."""
    now = timezone.now()
    if delay is not None and send_at is not None:
        raise InvalidPayload("send_at", "exclusive", "give delay or send_at, not both")
    if send_at is not None:
        if not isinstance(send_at, datetime):
            raise InvalidPayload("send_at", "type", "must be a datetime")
        if timezone.is_naive(send_at):
            raise InvalidPayload("send_at", "aware", "must be timezone-aware")
        return send_at
    if delay is None:
        return now
    if isinstance(delay, bool) or not isinstance(delay, timedelta | int | float):
        raise InvalidPayload("delay", "type", "must be a timedelta or a number of seconds")
    delay = delay if isinstance(delay, timedelta) else timedelta(seconds=delay)
    if delay < timedelta(0):
        raise InvalidPayload("delay", "min_value", "must not be negative")
    return now + delay


def new_email(
    payload: dict[str, Any], kind: EmailKind, scheduled_at: datetime, **fields: Any
) -> Email:
    """An unsaved Email for ``payload``, with its search fields filled in from the body."""
    addresses = payloads.payload_addresses(payload)
    recipient_count = len(payload.get("recipients", [])) or 1
    return Email(
        kind=kind,
        payload=payload,
        to_email=addresses[0].lower(),
        recipient_count=recipient_count,
        subject=payload.get("subject", ""),
        template_id=payload.get("templateId", ""),
        scheduled_at=scheduled_at,
        **fields,
    )


def create_once(emails: list[Email]) -> list[Email]:
    """``create_emails``, unless their idempotency keys were used: then the Emails written with
    them, and nothing is published. A concurrent writer of the same keys is settled by the
    unique constraint."""
    keys = [email.idempotency_key for email in emails if email.idempotency_key is not None]
    written = Email.objects.filter(idempotency_key__in=keys).order_by("id")
    if keys and (existing := list(written)):
        return existing
    try:
        with transaction.atomic():
            return create_emails(emails)
    except IntegrityError:
        if not keys:
            raise
        return list(written.all())  # A fresh read: the first one found nothing.


def create_emails(emails: list[Email]) -> list[Email]:
    """Insert Emails with their recipients and a creation event, and publish them on commit.

    A constant number of queries whatever the count: three bulk inserts.
    """
    created = Email.objects.bulk_create(emails)
    EmailRecipient.objects.bulk_create(
        EmailRecipient(email=email, address=address.lower())
        for email in created
        for address in payloads.payload_addresses(email.payload)
    )
    EmailEvent.objects.bulk_create(
        EmailEvent(email=email, kind=EmailEvent.Kind.CREATED, data=_creation_data(email))
        for email in created
    )
    publish_on_commit([email.pk for email in created])
    return created


def publish_on_commit(email_ids: Iterable[int], using: str = "default") -> None:
    """Publish these Emails when the current transaction commits, together with the others
    written in it: one QStash call per 100, however many ``send_email`` calls wrote them."""
    _waiting_for_commit.ids.setdefault(using, set()).update(email_ids)
    transaction.on_commit(lambda: _publish_waiting(using), using=using)


def _publish_waiting(using: str) -> None:
    ids = sorted(_waiting_for_commit.ids.pop(using, set()))
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        publish(due(Email.objects.filter(pk__in=chunk)).order_by("id"))


def due(emails: QuerySet[Email], now: datetime | None = None) -> QuerySet[Email]:
    """Pending Emails whose time is within QStash's reach (``MAX_DELAY`` from now)."""
    horizon = (now or timezone.now()) + app_settings.max_delay
    return emails.filter(status=EmailStatus.PENDING, scheduled_at__lte=horizon)


def publish(emails: Iterable[Email]) -> PublishSummary:
    """Publish Emails in chunks of 100 (one QStash call each) and record each outcome."""
    summary = PublishSummary()
    chunk: list[Email] = []
    for email in emails:
        chunk.append(email)
        if len(chunk) == BATCH_SIZE:
            summary.add(_publish_chunk(chunk))
            chunk = []
    if chunk:
        summary.add(_publish_chunk(chunk))
    return summary


def flush() -> PublishSummary:
    """Publish every due pending Email, 100 at a time, safe to run from two processes at once.

    Each chunk is locked with ``SELECT ... FOR UPDATE SKIP LOCKED`` (where the database has it)
    for the length of its publish, so a second flusher takes other rows. Emails that stay pending
    (QStash unreachable) are left for the next run.
    """
    summary = PublishSummary()
    last_id = 0
    while True:
        with transaction.atomic():
            rows = due(Email.objects.filter(pk__gt=last_id)).order_by("id")
            chunk = list(rows.select_for_update(skip_locked=True)[:BATCH_SIZE])
            if not chunk:
                return summary
            last_id = chunk[-1].pk
            summary.add(_publish_chunk(chunk))


def _publish_chunk(emails: list[Email]) -> PublishSummary:
    try:
        results = get_transport().publish(emails)
    except Exception as error:  # A transport must not lose Emails, whatever it raises.
        logger.exception("autosend_queue: transport raised while publishing %d emails", len(emails))
        results = [PublishResult(error=f"{type(error).__name__}: {error}")] * len(emails)
    _record_results(emails, results)
    summary = PublishSummary(calls=1)
    for result in results:
        if result.accepted:
            summary.queued += 1
        elif result.permanent:
            summary.failed += 1
        else:
            summary.deferred += 1
    return summary


@transaction.atomic
def _record_results(emails: list[Email], results: list[PublishResult]) -> None:
    now = timezone.now()
    outcomes = [
        (email, replace(result, error=storable(result.error, ERROR_LIMIT)))
        for email, result in zip(emails, results, strict=True)
    ]
    accepted = {e.pk: {"qstash_message_id": r.message_id} for e, r in outcomes if r.accepted}
    rejected = {e.pk: {"last_error": r.error} for e, r in outcomes if r.permanent}
    deferred = [(e.pk, r.error) for e, r in outcomes if not (r.accepted or r.permanent)]
    moved = states.transition(
        accepted, states.QUEUED, fields={"published_at": now}, per_email=accepted
    )
    if moved < len(accepted):
        # A callback overtook this answer and moved the Email on; still keep its message id.
        Email.objects.filter(pk__in=list(accepted), qstash_message_id="").update(
            published_at=now, qstash_message_id=states.per_row_value("qstash_message_id", accepted)
        )
    states.transition(rejected, states.FAILED, per_email=rejected)
    if deferred:
        # A transient error is the batch's, so it is the same for every Email of the chunk.
        Email.objects.filter(pk__in=[pk for pk, _ in deferred], status=EmailStatus.PENDING).update(
            publish_attempts=F("publish_attempts") + 1, last_error=deferred[0][1], updated_at=now
        )
    EmailEvent.objects.bulk_create(_result_event(email, result) for email, result in outcomes)


def _result_event(email: Email, result: PublishResult) -> EmailEvent:
    if result.accepted:
        data = {"message_id": result.message_id, "deduplicated": result.deduplicated}
        return EmailEvent(email=email, kind=EmailEvent.Kind.PUBLISHED, data=data)
    kind = EmailEvent.Kind.REJECTED if result.permanent else EmailEvent.Kind.PUBLISH_FAILED
    return EmailEvent(email=email, kind=kind, data={"error": result.error})


def _creation_data(email: Email) -> dict[str, Any]:
    data: dict[str, Any] = {"scheduled_at": email.scheduled_at.isoformat()}
    if email.resent_from is not None:
        data["resent_from"] = str(email.resent_from.uuid)
    return data
