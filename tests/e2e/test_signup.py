"""A signup, end to end: enrollment, publish, delivery to the sandbox, signed callbacks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autosend_queue.models import Email, EmailStatus, Enrollment
from tests.e2e.conftest import wait_for, wait_for_status
from tests.factories import SequenceFactory, SequenceStepFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_up(client) -> None:
    response = client.post(
        "/signup/",
        {
            "username": "ada",
            "email": "ada@example.com",
            "first_name": "Ada",
            "password1": "a-long-Passphrase-42",
            "password2": "a-long-Passphrase-42",
        },
    )
    assert response.status_code == 302


@pytest.fixture
def onboarding():
    sequence = SequenceFactory(slug="onboarding")
    SequenceStepFactory(sequence=sequence, position=1, subject="Welcome", delay=timedelta(0))
    SequenceStepFactory(sequence=sequence, position=2, subject="Tips", delay=timedelta(hours=1))
    return sequence


def test_a_signup_ends_in_sent_emails_through_verified_callbacks(client, dev, onboarding):
    sign_up(client)
    welcome, tips = Email.objects.order_by("scheduled_at")
    wait_for_status(welcome, EmailStatus.SENT)
    tips.refresh_from_db()
    assert tips.status == EmailStatus.QUEUED
    assert dev.release(tips.qstash_message_id)
    wait_for_status(tips, EmailStatus.SENT)
    assert [email.subject for email in dev.sandbox.emails] == ["Welcome", "Tips"]
    callbacks = [attempt for attempt in dev.attempts if attempt.kind == "callback"]
    assert callbacks
    assert all(attempt.status == 200 for attempt in callbacks)


def test_the_enrollment_completes_when_its_last_email_is_sent(client, dev, onboarding):
    sign_up(client)
    for email in Email.objects.all():
        dev.release(email.qstash_message_id)
    for email in Email.objects.all():
        wait_for_status(email, EmailStatus.SENT)
    enrollment = Enrollment.objects.get()
    wait_for(lambda: Enrollment.objects.get(pk=enrollment.pk).status == "completed")
