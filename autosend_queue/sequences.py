"""Drip sequences: enroll users, stop their remaining emails, and notice when they are done.

``enroll_many`` is the one writer: ``enroll`` is it for one user, and ``autosend_enroll`` calls it
per chunk of users. A call costs a constant number of queries whatever the number of steps, and
its Emails go out through the outbox: published on commit, one QStash call per 100.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from autosend_queue import outbox, payloads, states
from autosend_queue.conf import app_settings
from autosend_queue.exceptions import ConfigurationError, InvalidPayload
from autosend_queue.models import Email, EmailKind, Enrollment, Sequence, SequenceStep

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

UserData = Callable[["AbstractBaseUser"], Mapping[str, Any]]


@dataclass(frozen=True)
class Recipient:
    """A user who can be enrolled, with their AutoSend address."""

    user: AbstractBaseUser
    address: payloads.Address


@dataclass(frozen=True)
class Cancelled:
    enrollments: int
    emails: int


def enroll(user: AbstractBaseUser, sequence: Sequence) -> Enrollment | None:
    """Enroll ``user`` in ``sequence``: one Email per active step, published on commit.

    Enrolling again returns the existing Enrollment and writes nothing. A user without a valid
    email address is not enrolled: a warning is logged and ``None`` is returned.
    """
    enrollments = enroll_many([user], sequence)
    return enrollments[0] if enrollments else None


def enroll_many(users: Iterable[AbstractBaseUser], sequence: Sequence) -> list[Enrollment]:
    """Enroll users in one transaction with bulk inserts; return their Enrollments, in order.

    Users already enrolled keep their Enrollment. Users without a valid email address are skipped
    (one warning names them). Raises ``InvalidPayload`` for an inactive sequence, or for a step
    AutoSend would refuse, and then writes nothing.
    """
    if not sequence.is_active:
        raise InvalidPayload("sequence", "inactive", f"sequence {sequence.slug!r} is not active")
    recipients = _recipients(users, sequence)
    if not recipients:
        return []
    steps = list(sequence.steps.filter(is_active=True).order_by("position"))
    try:
        return _enroll_recipients(recipients, sequence, steps)
    except IntegrityError:
        # Another process enrolled some of these users since we looked; a second look sees them.
        return _enroll_recipients(recipients, sequence, steps)


def step_key(step: SequenceStep, user_pk: Any) -> str:
    """The idempotency key of one step for one user: each is written at most once, ever."""
    return f"sequence:{step.sequence_id}:step:{step.pk}:user:{user_pk}"


def default_user_data(user: AbstractBaseUser) -> dict[str, str]:
    """The dynamicData every step gets for a user, under USER_DATA's and the step's own."""
    return {
        "email": _email_address_of(user),
        "firstName": getattr(user, "first_name", "") or "",
        "lastName": getattr(user, "last_name", "") or "",
        "username": user.get_username(),
    }


def project_user_data(user: AbstractBaseUser) -> Mapping[str, Any]:
    """What the callable named by ``AUTOSEND_QUEUE['USER_DATA']`` returns for ``user``."""
    path = app_settings.USER_DATA
    if not path:
        return {}
    try:
        function: UserData = import_string(path)
    except ImportError as error:
        raise ConfigurationError(f"AUTOSEND_QUEUE['USER_DATA'] = {path!r}: {error}") from error
    data = function(user)
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"AUTOSEND_QUEUE['USER_DATA'] = {path!r} returned {type(data).__name__}, not a mapping"
        )
    return data


def cancel_enrollment(enrollment: Enrollment) -> int:
    """Cancel an Enrollment's Emails not sent yet and mark it cancelled; return how many Emails."""
    cancelled = cancel_enrollments(Enrollment.objects.filter(pk=enrollment.pk))
    if cancelled.enrollments:
        enrollment.status = Enrollment.Status.CANCELLED
    return cancelled.emails


def cancel_enrollments(enrollments: QuerySet[Enrollment]) -> Cancelled:
    """Cancel these Enrollments' remaining Emails (QStash's too, on commit); mark active ones
    cancelled. Completed ones stay completed."""
    chosen = enrollments.values("pk")
    with transaction.atomic():
        emails = outbox.cancel(Email.objects.filter(enrollment__in=chosen))
        marked = Enrollment.objects.filter(pk__in=chosen, status=Enrollment.Status.ACTIVE).update(
            status=Enrollment.Status.CANCELLED, updated_at=timezone.now()
        )
    return Cancelled(enrollments=marked, emails=emails)


def cancel_for_user(user: AbstractBaseUser) -> Cancelled:
    """Stop a deleted or deactivated user's drips. One indexed query when there is none."""
    active = Enrollment.objects.filter(user_id=user.pk, status=Enrollment.Status.ACTIVE)
    if not active.exists():
        return Cancelled(enrollments=0, emails=0)
    return cancel_enrollments(active)


def complete_if_finished(enrollment_id: int) -> bool:
    """Mark an active Enrollment completed if none of its Emails is still on its way.

    One conditional UPDATE, so two callbacks finishing the last two steps at once cannot both
    miss it, nor both count it.
    """
    in_flight = Email.objects.filter(enrollment=OuterRef("pk"), status__in=states.IN_FLIGHT)
    finished = (
        Enrollment.objects.filter(pk=enrollment_id, status=Enrollment.Status.ACTIVE)
        .exclude(Exists(in_flight))
        .update(status=Enrollment.Status.COMPLETED, updated_at=timezone.now())
    )
    return bool(finished)


def _recipients(users: Iterable[AbstractBaseUser], sequence: Sequence) -> list[Recipient]:
    recipients: dict[Any, Recipient] = {}
    unreachable = []
    for user in users:
        try:
            address = payloads.parse_address(_address_input(user), "to")
        except InvalidPayload:
            unreachable.append(user.pk)
            continue
        recipients[user.pk] = Recipient(user, address)
    if unreachable:
        logger.warning(
            "autosend_queue: %d users without a valid email address not enrolled in %r: %s",
            len(unreachable),
            sequence.slug,
            ", ".join(str(pk) for pk in unreachable[:20]),
        )
    return list(recipients.values())


def _enroll_recipients(
    recipients: list[Recipient], sequence: Sequence, steps: list[SequenceStep]
) -> list[Enrollment]:
    enrollments = {
        enrollment.user_id: enrollment
        for enrollment in Enrollment.objects.filter(
            sequence=sequence, user__in=[recipient.user.pk for recipient in recipients]
        )
    }
    newcomers = [recipient for recipient in recipients if recipient.user.pk not in enrollments]
    if newcomers:
        with transaction.atomic():
            enrollments.update(_write_enrollments(newcomers, sequence, steps))
    return [enrollments[recipient.user.pk] for recipient in recipients]


def _write_enrollments(
    newcomers: list[Recipient], sequence: Sequence, steps: list[SequenceStep]
) -> dict[Any, Enrollment]:
    enrolled_at = timezone.now()
    # A sequence without active steps has nothing left to send: it is complete at once.
    status = Enrollment.Status.ACTIVE if steps else Enrollment.Status.COMPLETED
    created = Enrollment.objects.bulk_create(
        Enrollment(
            sequence=sequence, user_id=recipient.user.pk, enrolled_at=enrolled_at, status=status
        )
        for recipient in newcomers
    )
    keys = [step_key(step, recipient.user.pk) for recipient in newcomers for step in steps]
    # Keys outlive a deleted Enrollment: enrolling again writes only the steps never written.
    written = set(
        Email.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True)
    )
    outbox.create_emails(
        [
            email
            for recipient, enrollment in zip(newcomers, created, strict=True)
            for email in _emails_for(recipient, enrollment, steps, written)
        ]
    )
    return {enrollment.user_id: enrollment for enrollment in created}


def _emails_for(
    recipient: Recipient,
    enrollment: Enrollment,
    steps: list[SequenceStep],
    written: Collection[str | None],
) -> list[Email]:
    """One Email per step not yet written for this user; ``USER_DATA`` is called once per user."""
    data = {**default_user_data(recipient.user), **project_user_data(recipient.user)}
    return [
        _step_email(step, enrollment, recipient, data)
        for step in steps
        if step_key(step, recipient.user.pk) not in written
    ]


def _step_email(
    step: SequenceStep, enrollment: Enrollment, recipient: Recipient, user_data: Mapping[str, Any]
) -> Email:
    if not isinstance(step.dynamic_data, Mapping):
        raise InvalidPayload(
            f"steps[{step.position}].dynamic_data", "type", "must be a JSON object"
        )
    payload = payloads.build_send_payload(
        to=recipient.address,
        from_email=enrollment.sequence.from_email or None,
        subject=step.subject or None,
        html=step.html or None,
        text=step.text or None,
        template_id=step.template_id or None,
        dynamic_data={**user_data, **step.dynamic_data},
    )
    return outbox.new_email(
        payload,
        EmailKind.SINGLE,
        enrollment.enrolled_at + step.delay,
        user=recipient.user,
        sequence=enrollment.sequence,
        sequence_step=step,
        enrollment=enrollment,
        idempotency_key=step_key(step, recipient.user.pk),
    )


def _email_address_of(user: AbstractBaseUser) -> str:
    return getattr(user, user.get_email_field_name(), "") or ""


def _address_input(user: AbstractBaseUser) -> dict[str, str]:
    full_name = getattr(user, "get_full_name", lambda: "")()
    return {"email": _email_address_of(user), "name": full_name or ""}
