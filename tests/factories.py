"""factory-boy factories for the suite's data."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from autosend_queue.models import (
    Email,
    EmailEvent,
    EmailKind,
    EmailRecipient,
    EmailStatus,
    Enrollment,
    Sequence,
    SequenceStep,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    password = factory.django.Password("password")


class EmailFactory(factory.django.DjangoModelFactory):
    """An Email as ``send_email`` would write it; pass ``status`` etc. to put it elsewhere."""

    class Meta:
        model = Email
        skip_postgeneration_save = True

    kind = EmailKind.SINGLE
    status = EmailStatus.PENDING
    to_email = factory.Sequence(lambda n: f"reader{n}@example.com")
    subject = "Hello"
    payload = factory.LazyAttribute(
        lambda email: {
            "to": {"email": email.to_email},
            "from": {"email": "team@example.com", "name": "Team"},
            "subject": email.subject,
            "html": "<p>Hello</p>",
        }
    )
    scheduled_at = factory.LazyFunction(timezone.now)

    @factory.post_generation
    def with_recipients(
        email: Email, create: bool, extracted: bool | None, **kwargs: object
    ) -> None:
        if create and extracted is not False:
            EmailRecipient.objects.create(email=email, address=email.to_email)


class QueuedEmailFactory(EmailFactory):
    status = EmailStatus.QUEUED
    qstash_message_id = factory.Sequence(lambda n: f"msg_{n:08d}")
    published_at = factory.LazyFunction(timezone.now)


class EmailEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailEvent

    email = factory.SubFactory(EmailFactory)
    kind = EmailEvent.Kind.CREATED


class SequenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sequence

    name = factory.Sequence(lambda n: f"Onboarding {n}")
    slug = factory.Sequence(lambda n: f"onboarding-{n}")
    trigger = Sequence.Trigger.SIGNUP


class SequenceStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SequenceStep

    sequence = factory.SubFactory(SequenceFactory)
    position = factory.Sequence(lambda n: n + 1)
    delay = timedelta(0)
    subject = factory.Sequence(lambda n: f"Step {n}")
    html = "<p>Hello {{firstName}}</p>"


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    # A manual sequence: with a signup one, creating the user would enroll them already.
    sequence = factory.SubFactory(SequenceFactory, trigger=Sequence.Trigger.MANUAL)
    user = factory.SubFactory(UserFactory)
    enrolled_at = factory.LazyFunction(timezone.now)


class SentEmailFactory(EmailFactory):
    """A single send AutoSend accepted: its webhooks find it by ``autosend_email_id``."""

    status = EmailStatus.SENT
    qstash_message_id = factory.Sequence(lambda n: f"msg_sent_{n:08d}")
    autosend_email_id = factory.Sequence(lambda n: f"{n:024x}")
    sent_at = factory.LazyFunction(timezone.now)


class EmailRecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailRecipient

    email = factory.SubFactory(EmailFactory, with_recipients=False)
    address = factory.Sequence(lambda n: f"recipient{n}@example.com")


class StaffUserFactory(UserFactory):
    """A staff user; ``StaffUserFactory(permissions=["view_email"])`` grants app permissions."""

    class Meta:
        skip_postgeneration_save = True

    is_staff = True

    @factory.post_generation
    def permissions(user, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create and extracted:
            user.user_permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="autosend_queue", codename__in=extracted
                )
            )
