"""Drip sequences: enrolling writes one Email per step, stopping cancels them, sending completes."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from autosend_queue import cancel, enroll, states
from autosend_queue.exceptions import ConfigurationError, InvalidPayload
from autosend_queue.models import Email, EmailStatus, Enrollment
from autosend_queue.sequences import enroll_many
from autosend_queue.signals import email_failed, email_sent
from autosend_queue.transports import locmem
from tests.factories import (
    EmailFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
    SequenceFactory,
    SequenceStepFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_enrollment_on_signup(autosend_settings):
    """Users made here are not enrolled by the signup receiver (tests/test_signup.py covers it)."""
    autosend_settings(ENROLL_ON_SIGNUP=False)


def sequence_of(*delays: timedelta, **fields):
    sequence = SequenceFactory(**fields)
    for position, delay in enumerate(delays, start=1):
        SequenceStepFactory(sequence=sequence, position=position, delay=delay)
    return sequence


def user_data_from_display_name(user):
    return {"displayName": user.display_name, "firstName": "From USER_DATA"}


def not_a_mapping(user):
    return ["not", "a", "mapping"]


# Enrolling


def test_enroll_writes_an_active_enrollment_and_one_email_per_active_step():
    sequence = sequence_of(timedelta(0), timedelta(days=1))
    SequenceStepFactory(sequence=sequence, position=3, is_active=False)
    enrollment = enroll(UserFactory(), sequence)
    assert enrollment.status == Enrollment.Status.ACTIVE
    assert list(
        enrollment.emails.order_by("scheduled_at").values_list("sequence_step__position", flat=True)
    ) == [1, 2]


def test_each_email_is_scheduled_at_enrollment_plus_its_delay():
    sequence = sequence_of(timedelta(0), timedelta(days=2, hours=3))
    enrollment = enroll(UserFactory(), sequence)
    scheduled = sorted(enrollment.emails.values_list("scheduled_at", flat=True))
    assert scheduled == [
        enrollment.enrolled_at,
        enrollment.enrolled_at + timedelta(days=2, hours=3),
    ]


def test_each_email_links_its_sequence_step_enrollment_user_and_idempotency_key():
    user = UserFactory()
    sequence = sequence_of(timedelta(0))
    enrollment = enroll(user, sequence)
    email = Email.objects.get()
    step = sequence.steps.get()
    assert (email.sequence, email.sequence_step, email.enrollment, email.user) == (
        sequence,
        step,
        enrollment,
        user,
    )
    assert email.idempotency_key == f"sequence:{sequence.pk}:step:{step.pk}:user:{user.pk}"


def test_the_email_goes_to_the_user_by_name_from_the_sequence_sender():
    user = UserFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    enroll(user, sequence_of(timedelta(0), from_email="Onboarding <hello@example.com>"))
    payload = Email.objects.get().payload
    assert payload["to"] == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert payload["from"] == {"email": "hello@example.com", "name": "Onboarding"}


def test_without_a_sequence_sender_the_default_from_is_used():
    enroll(UserFactory(), sequence_of(timedelta(0)))
    assert Email.objects.get().payload["from"] == {"email": "team@example.com", "name": "Team"}


def test_a_template_step_sends_the_template_id():
    sequence = SequenceFactory()
    SequenceStepFactory(sequence=sequence, template_id="A-welcome", subject="", html="")
    enroll(UserFactory(), sequence)
    email = Email.objects.get()
    assert email.payload["templateId"] == "A-welcome"
    assert "html" not in email.payload


def test_every_step_gets_the_users_email_names_and_username():
    user = UserFactory(username="ada", email="ada@example.com", first_name="Ada", last_name="L")
    enroll(user, sequence_of(timedelta(0)))
    assert Email.objects.get().payload["dynamicData"] == {
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "L",
        "username": "ada",
    }


def test_user_data_callable_adds_to_and_overrides_the_defaults(autosend_settings):
    autosend_settings(USER_DATA="tests.test_sequences.user_data_from_display_name")
    enroll(UserFactory(display_name="Countess"), sequence_of(timedelta(0)))
    data = Email.objects.get().payload["dynamicData"]
    assert data["displayName"] == "Countess"
    assert data["firstName"] == "From USER_DATA"


def test_the_steps_own_dynamic_data_wins_over_user_data(autosend_settings):
    autosend_settings(USER_DATA="tests.test_sequences.user_data_from_display_name")
    sequence = SequenceFactory()
    SequenceStepFactory(sequence=sequence, dynamic_data={"firstName": "friend", "tip": 1})
    enroll(UserFactory(), sequence)
    data = Email.objects.get().payload["dynamicData"]
    assert (data["firstName"], data["tip"]) == ("friend", 1)


def test_a_user_data_path_that_does_not_import_is_a_configuration_error(autosend_settings):
    autosend_settings(USER_DATA="tests.nowhere.user_data")
    with pytest.raises(ConfigurationError, match="USER_DATA"):
        enroll(UserFactory(), sequence_of(timedelta(0)))


def test_user_data_returning_a_non_mapping_is_a_configuration_error(autosend_settings):
    autosend_settings(USER_DATA="tests.test_sequences.not_a_mapping")
    with pytest.raises(ConfigurationError, match="not a mapping"):
        enroll(UserFactory(), sequence_of(timedelta(0)))


def test_enrolling_twice_returns_the_existing_enrollment_and_writes_nothing():
    user, sequence = UserFactory(), sequence_of(timedelta(0))
    first = enroll(user, sequence)
    locmem.outbox.clear()
    assert enroll(user, sequence) == first
    assert Email.objects.count() == 1
    assert locmem.outbox == []


def test_a_user_without_an_email_address_is_not_enrolled_and_a_warning_is_logged(caplog):
    user = UserFactory(email="")
    with caplog.at_level(logging.WARNING, logger="autosend_queue"):
        assert enroll(user, sequence_of(timedelta(0))) is None
    assert not Enrollment.objects.exists()
    assert "without a valid email address not enrolled in 'onboarding-" in caplog.text
    assert str(user.pk) in caplog.text


def test_a_user_with_an_invalid_email_address_is_not_enrolled():
    assert enroll(UserFactory(email="not-an-address"), sequence_of(timedelta(0))) is None
    assert not Email.objects.exists()


def test_an_inactive_sequence_takes_no_enrollment():
    with pytest.raises(InvalidPayload) as raised:
        enroll(UserFactory(), sequence_of(timedelta(0), is_active=False))
    assert (raised.value.field, raised.value.rule) == ("sequence", "inactive")


def test_a_step_autosend_would_refuse_writes_nothing():
    sequence = SequenceFactory()
    SequenceStepFactory(sequence=sequence, html="", text="")
    with pytest.raises(InvalidPayload) as raised:
        enroll(UserFactory(), sequence)
    assert raised.value.field == "html"
    assert not Enrollment.objects.exists()
    assert not Email.objects.exists()


def test_a_sequence_without_active_steps_completes_at_once():
    enrollment = enroll(UserFactory(), SequenceFactory())
    assert enrollment.status == Enrollment.Status.COMPLETED


def test_enrolling_again_after_the_enrollment_was_deleted_writes_only_new_steps():
    user, sequence = UserFactory(), SequenceFactory()
    SequenceStepFactory(sequence=sequence, position=1, subject="Welcome")
    enroll(user, sequence).delete()
    SequenceStepFactory(sequence=sequence, position=2, subject="Added later")
    enroll(user, sequence)
    assert sorted(Email.objects.values_list("subject", flat=True)) == ["Added later", "Welcome"]


def test_a_steps_emails_are_published_on_commit_in_one_call(mocker_transport_calls):
    with transaction.atomic():
        enroll(UserFactory(), sequence_of(*[timedelta(hours=n) for n in range(3)]))
        assert mocker_transport_calls == []
    assert mocker_transport_calls == [3]
    assert set(Email.objects.values_list("status", flat=True)) == {EmailStatus.QUEUED}


def test_enroll_many_enrolls_a_chunk_in_one_publish_and_skips_unreachable_users(
    mocker_transport_calls,
):
    users = [UserFactory(), UserFactory(email=""), UserFactory()]
    enrollments = enroll_many(users, sequence_of(timedelta(0), timedelta(days=1)))
    assert [enrollment.user for enrollment in enrollments] == [users[0], users[2]]
    assert mocker_transport_calls == [4]


@pytest.mark.parametrize("steps", [1, 10])
def test_enrolling_costs_the_same_queries_for_1_or_10_steps(steps, django_assert_num_queries):
    sequence = sequence_of(*[timedelta(hours=n) for n in range(steps)])
    user = UserFactory()
    # Steps, enrollments; BEGIN, enrollment insert, keys written, 3 outbox inserts, COMMIT;
    # then the publish on commit: due emails, one UPDATE, BEGIN, event insert, COMMIT.
    with django_assert_num_queries(14):
        enroll(user, sequence)


@pytest.mark.postgres
def test_two_concurrent_enrollments_of_one_user_end_in_one_enrollment():
    user, sequence = UserFactory(), sequence_of(timedelta(0), timedelta(days=1))
    barrier = threading.Barrier(2)
    results: list[Enrollment | None] = []

    def enroll_at_once() -> None:
        try:
            barrier.wait()
            results.append(enroll(user, sequence))
        finally:
            connection.close()

    threads = [threading.Thread(target=enroll_at_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert results[0] == results[1]
    assert Enrollment.objects.count() == 1
    assert Email.objects.count() == 2


# Stopping


def test_cancelling_an_enrollment_cancels_its_remaining_emails_and_marks_it_cancelled():
    enrollment = EnrollmentFactory()
    pending = EmailFactory(enrollment=enrollment)
    queued = QueuedEmailFactory(enrollment=enrollment)
    sent = EmailFactory(enrollment=enrollment, status=EmailStatus.SENT)
    assert cancel(enrollment) == 2
    statuses = dict(Email.objects.values_list("pk", "status"))
    assert statuses == {
        pending.pk: EmailStatus.CANCELLED,
        queued.pk: EmailStatus.CANCELLED,
        sent.pk: EmailStatus.SENT,
    }
    assert locmem.cancelled == [queued.qstash_message_id]
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.CANCELLED


def test_cancelling_a_completed_enrollment_leaves_it_completed():
    enrollment = EnrollmentFactory(status=Enrollment.Status.COMPLETED)
    assert cancel(enrollment) == 0
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED


def test_deleting_a_user_cancels_their_drip_emails_in_qstash():
    enrollment = EnrollmentFactory()
    queued = QueuedEmailFactory(enrollment=enrollment, user=enrollment.user)
    enrollment.user.delete()
    queued.refresh_from_db()
    assert queued.status == EmailStatus.CANCELLED
    assert locmem.cancelled == [queued.qstash_message_id]


def test_deactivating_a_user_cancels_their_drip_emails_and_enrollments():
    enrollment = EnrollmentFactory()
    pending = EmailFactory(enrollment=enrollment, user=enrollment.user)
    enrollment.user.is_active = False
    enrollment.user.save()
    pending.refresh_from_db()
    enrollment.refresh_from_db()
    assert pending.status == EmailStatus.CANCELLED
    assert enrollment.status == Enrollment.Status.CANCELLED


def test_saving_an_inactive_user_without_active_enrollments_costs_one_query(
    django_assert_num_queries,
):
    user = UserFactory(is_active=False)
    with django_assert_num_queries(2):  # the UPDATE of the save, the check for enrollments
        user.save()


def test_other_users_emails_are_left_alone():
    mine, theirs = EnrollmentFactory(), EnrollmentFactory()
    their_email = EmailFactory(enrollment=theirs, user=theirs.user)
    mine.user.delete()
    their_email.refresh_from_db()
    assert their_email.status == EmailStatus.PENDING


# Completing


def send(email: Email) -> None:
    """What the QStash callback does once AutoSend accepted an Email."""
    states.transition([email.pk], states.SENT)
    email.refresh_from_db()
    email_sent.send(sender=Email, email=email)


def test_an_enrollment_is_completed_when_its_last_email_is_sent():
    enrollment = enroll(UserFactory(), sequence_of(timedelta(0), timedelta(days=1)))
    for email in enrollment.emails.order_by("scheduled_at"):
        send(email)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED


def test_an_enrollment_whose_last_email_failed_for_good_is_completed():
    enrollment = enroll(UserFactory(), sequence_of(timedelta(0), timedelta(days=1)))
    first, last = enrollment.emails.order_by("scheduled_at")
    send(first)
    states.transition([last.pk], states.FAILED)
    email_failed.send(sender=Email, email=last, reason="HTTP 400")
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED


def test_an_enrollment_with_emails_still_queued_stays_active():
    enrollment = enroll(UserFactory(), sequence_of(timedelta(0), timedelta(days=1)))
    send(enrollment.emails.order_by("scheduled_at").first())
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_a_cancelled_enrollment_is_not_completed_by_a_late_send():
    enrollment = EnrollmentFactory(status=Enrollment.Status.CANCELLED)
    send(EmailFactory(enrollment=enrollment))
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.CANCELLED


# Step validation


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"template_id": "A-1", "html": "<p>Hi</p>"}, "html"),
        ({"template_id": "A-1", "subject": "", "html": "", "text": "Hi"}, "text"),
        ({"subject": "", "html": "<p>Hi</p>"}, "subject"),
        ({"subject": "Hi", "html": "", "text": ""}, "html"),
        ({"delay": timedelta(seconds=-1)}, "delay"),
        ({"dynamic_data": ["a", "list"]}, "dynamic_data"),
    ],
)
def test_a_step_that_autosend_would_refuse_fails_clean_on_the_field(content, field):
    step = SequenceStepFactory.build(**content)
    with pytest.raises(ValidationError) as raised:
        step.clean()
    assert list(raised.value.message_dict) == [field]


@pytest.mark.parametrize(
    "content",
    [
        {"template_id": "A-1", "subject": "", "html": ""},
        {"subject": "Hi", "html": "", "text": "Hello"},
        {"subject": "Hi", "html": "<p>Hello</p>"},
    ],
)
def test_a_template_or_a_subject_with_a_body_is_a_valid_step(content):
    SequenceStepFactory.build(**content).clean()
