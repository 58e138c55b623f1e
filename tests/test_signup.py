"""Signing up enrolls the new user in every active signup sequence, once the signup commits."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from autosend_queue.models import Email, EmailStatus, Enrollment, Sequence
from tests.factories import SequenceFactory, SequenceStepFactory, UserFactory
from tests.helpers import accept_batch, batch_entries

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def onboarding(*delays: timedelta, **fields) -> Sequence:
    sequence = SequenceFactory(**fields)
    for position, delay in enumerate(delays, start=1):
        SequenceStepFactory(sequence=sequence, position=position, delay=delay)
    return sequence


def sign_up(client, username: str = "ada", email: str = "ada@example.com"):
    return client.post(
        "/signup/",
        {
            "username": username,
            "email": email,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )


def test_a_signup_through_the_site_ends_in_its_emails_and_one_qstash_batch_call(client, qstash):
    route = accept_batch(qstash)
    onboarding(timedelta(0), timedelta(days=1), timedelta(days=6))
    onboarding(timedelta(hours=1))
    response = sign_up(client)
    assert response.status_code == 302
    user = User.objects.get(username="ada")
    emails = Email.objects.filter(user=user)
    assert emails.count() == 4
    assert set(emails.values_list("status", flat=True)) == {EmailStatus.QUEUED}
    assert route.call_count == 1
    assert {entry["headers"]["Upstash-Deduplication-Id"] for entry in batch_entries(route)} == {
        str(uuid) for uuid in emails.values_list("uuid", flat=True)
    }


def test_the_signup_emails_greet_the_user_by_name(client):
    onboarding(timedelta(0))
    sign_up(client)
    assert Email.objects.get().payload["dynamicData"]["firstName"] == "Ada"


def test_enrollment_waits_for_the_signups_transaction_to_commit():
    onboarding(timedelta(0))
    with transaction.atomic():
        user = UserFactory()
        assert not Enrollment.objects.exists()
    assert Enrollment.objects.get().user == user


def failed_signup() -> None:
    with transaction.atomic():
        UserFactory()
        raise RuntimeError("the signup failed")


def test_a_rolled_back_signup_enrolls_nobody():
    onboarding(timedelta(0))
    with pytest.raises(RuntimeError):
        failed_signup()
    assert not Enrollment.objects.exists()
    assert not Email.objects.exists()


def test_only_active_signup_sequences_enroll():
    wanted = onboarding(timedelta(0))
    onboarding(timedelta(0), trigger=Sequence.Trigger.MANUAL)
    onboarding(timedelta(0), is_active=False)
    user = UserFactory()
    assert list(Enrollment.objects.values_list("sequence", "user")) == [(wanted.pk, user.pk)]


def test_enroll_on_signup_can_be_turned_off(autosend_settings):
    autosend_settings(ENROLL_ON_SIGNUP=False)
    onboarding(timedelta(0))
    UserFactory()
    assert not Enrollment.objects.exists()


def test_saving_an_existing_user_enrolls_nobody():
    user = UserFactory()
    onboarding(timedelta(0))
    user.save()
    assert not Enrollment.objects.exists()


def test_a_user_created_inactive_is_not_enrolled():
    onboarding(timedelta(0))
    UserFactory(is_active=False)
    assert not Enrollment.objects.exists()


def test_a_signup_without_an_email_address_succeeds_with_a_warning(client, caplog):
    onboarding(timedelta(0))
    with caplog.at_level(logging.WARNING, logger="autosend_queue"):
        response = sign_up(client, email="")
    assert response.status_code == 302
    assert User.objects.filter(username="ada").exists()
    assert not Enrollment.objects.exists()
    assert "without a valid email address" in caplog.text


def test_a_broken_sequence_is_logged_and_does_not_stop_the_signup_or_the_others(client, caplog):
    broken = SequenceFactory(name="Broken")
    SequenceStepFactory(sequence=broken, html="", text="")
    working = onboarding(timedelta(0))
    with caplog.at_level(logging.ERROR, logger="autosend_queue"):
        response = sign_up(client)
    assert response.status_code == 302
    assert list(Enrollment.objects.values_list("sequence", flat=True)) == [working.pk]
    assert f"could not enroll user {User.objects.get().pk} in {broken.slug!r}" in caplog.text


def test_users_made_with_bulk_create_are_not_enrolled_without_autosend_enroll():
    onboarding(timedelta(0))
    User.objects.bulk_create([User(username="quiet", email="quiet@example.com")])
    assert not Enrollment.objects.exists()
