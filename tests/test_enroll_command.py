"""``manage.py autosend_enroll``: existing users into a sequence, in chunks, one publish each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from autosend_queue.models import Email, Enrollment, Sequence
from tests.factories import EnrollmentFactory, SequenceFactory, SequenceStepFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


@pytest.fixture
def sequence() -> Sequence:
    sequence = SequenceFactory(slug="welcome", trigger=Sequence.Trigger.MANUAL)
    SequenceStepFactory(sequence=sequence, position=1)
    return sequence


def existing_users(count: int, **fields) -> list:
    """Users as a data import makes them: bulk_create, so no signal enrolled them."""
    return User.objects.bulk_create(
        User(username=f"existing{index}", email=f"existing{index}@example.com", **fields)
        for index in range(count)
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("autosend_enroll", *args, stdout=out)
    return out.getvalue()


def test_existing_users_are_enrolled_with_one_email_per_step(sequence):
    existing_users(3)
    run("welcome")
    assert Enrollment.objects.filter(sequence=sequence).count() == 3
    assert Email.objects.filter(sequence=sequence).count() == 3


def test_users_already_enrolled_keep_their_enrollment(sequence):
    enrolled = EnrollmentFactory(sequence=sequence)
    existing_users(2)
    output = run("welcome")
    assert Enrollment.objects.filter(user=enrolled.user).get() == enrolled
    assert "Enrolled 2 of 2 users in 'welcome'" in output


def test_inactive_users_and_users_without_an_address_are_left_out(sequence):
    UserFactory(is_active=False)
    UserFactory(email="")
    reachable = UserFactory()
    run("welcome")
    assert list(Enrollment.objects.values_list("user", flat=True)) == [reachable.pk]


def test_users_with_an_invalid_address_are_counted_as_skipped(sequence):
    UserFactory(email="not-an-address")
    output = run("welcome")
    assert "Enrolled 0 of 1 users in 'welcome'" in output
    assert "1 skipped without a valid email address" in output


def test_since_enrolls_only_users_who_joined_on_or_after_the_date(sequence):
    old = UserFactory(date_joined=datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    new = UserFactory(date_joined=datetime(2025, 1, 1, tzinfo=UTC))
    run("welcome", "--since", "2025-01-01")
    assert list(Enrollment.objects.values_list("user", flat=True)) == [new.pk]
    assert not Enrollment.objects.filter(user=old).exists()


def test_since_that_is_not_a_date_is_refused(sequence):
    with pytest.raises(CommandError, match="'last week' is not a date"):
        run("welcome", "--since", "last week")


def test_dry_run_counts_users_emails_and_qstash_calls_and_writes_nothing(sequence):
    SequenceStepFactory(sequence=sequence, position=2, delay=timedelta(days=1))
    existing_users(150)
    output = run("welcome", "--dry-run")
    assert output.strip() == (
        "Would enroll 150 users in 'welcome': 300 emails in 3 QStash calls. Nothing was written."
    )
    assert not Enrollment.objects.exists()


def test_an_unknown_slug_is_an_error():
    with pytest.raises(CommandError, match="No sequence has the slug 'nope'"):
        run("nope")


def test_an_inactive_sequence_is_an_error(sequence):
    Sequence.objects.filter(pk=sequence.pk).update(is_active=False)
    with pytest.raises(CommandError, match="not active"):
        run("welcome")


def test_a_step_that_cannot_be_sent_stops_the_command_before_writing(sequence):
    SequenceStepFactory(sequence=sequence, position=2, html="", text="")
    existing_users(2)
    with pytest.raises(CommandError, match="html"):
        run("welcome")
    assert not Enrollment.objects.exists()


def test_each_chunk_of_100_users_is_published_in_calls_of_100(sequence, mocker_transport_calls):
    existing_users(250)
    run("welcome")
    assert mocker_transport_calls == [100, 100, 50]


def test_a_two_step_sequence_takes_two_calls_per_chunk(sequence, mocker_transport_calls):
    SequenceStepFactory(sequence=sequence, position=2, delay=timedelta(days=1))
    existing_users(150)
    run("welcome")
    assert mocker_transport_calls == [100, 100, 100]


def test_progress_is_drawn_as_a_text_bar_and_ends_in_a_summary(sequence):
    existing_users(150)
    lines = run("welcome").split("\r")
    assert lines[1].startswith("[" + "." * 30 + "]   0% 0/150 users")
    assert lines[2].startswith("[" + "#" * 20 + "." * 10 + "]  66% 100/150 users")
    assert lines[3].startswith("[" + "#" * 30 + "] 100% 150/150 users\n")
    assert "Enrolled 150 of 150 users in 'welcome'" in lines[3]
