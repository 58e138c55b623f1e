"""``autosend_prune`` deletes old finished history, in batches, and never what is in flight."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from autosend_queue.models import Email, EmailEvent, EmailRecipient, EmailStatus
from tests.factories import EmailEventFactory, EmailFactory

pytestmark = pytest.mark.django_db


def email_created_days_ago(days: int, status: str) -> Email:
    email = EmailFactory(status=status)
    EmailEventFactory(email=email)
    Email.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(days=days))
    return email


def prune(*args: str) -> str:
    out = StringIO()
    call_command("autosend_prune", *args, stdout=out)
    return out.getvalue()


def remaining() -> set[int]:
    return set(Email.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("status", ["sent", "failed", "cancelled"])
def test_old_finished_emails_are_deleted_with_their_events_and_recipients(status):
    email_created_days_ago(40, status)
    prune("--older-than", "30")
    assert (Email.objects.count(), EmailEvent.objects.count(), EmailRecipient.objects.count()) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize("status", ["pending", "queued", "retrying"])
def test_emails_in_flight_are_never_deleted_however_old(status):
    email = email_created_days_ago(400, status)
    prune("--older-than", "1")
    assert remaining() == {email.pk}


def test_recent_emails_are_kept():
    recent = email_created_days_ago(10, EmailStatus.SENT)
    prune("--older-than", "30")
    assert remaining() == {recent.pk}


def test_status_limits_what_is_deleted():
    failed = email_created_days_ago(40, EmailStatus.FAILED)
    email_created_days_ago(40, EmailStatus.SENT)
    email_created_days_ago(40, EmailStatus.CANCELLED)
    prune("--older-than", "30", "--status", "sent", "--status", "cancelled")
    assert remaining() == {failed.pk}


@pytest.mark.parametrize("status", ["pending", "queued", "retrying"])
def test_asking_to_prune_emails_in_flight_is_refused_naming_the_option_and_the_rule(status):
    with pytest.raises(CommandError, match=f"--status {status}: autosend_prune never deletes"):
        prune("--older-than", "30", "--status", status)


def test_an_unknown_status_is_refused():
    with pytest.raises(CommandError, match="--status delivered: not an email status"):
        prune("--older-than", "30", "--status", "delivered")


@pytest.mark.parametrize("option", ["--older-than", "--batch-size"])
def test_days_and_batch_size_must_be_positive(option):
    args = {"--older-than": "30", "--batch-size": "10", option: "0"}
    with pytest.raises(CommandError, match=f"{option} must be a positive whole number"):
        prune(*(part for pair in args.items() for part in pair))


def test_a_dry_run_counts_and_deletes_nothing():
    old = email_created_days_ago(40, EmailStatus.SENT)
    output = prune("--older-than", "30", "--dry-run")
    assert output.startswith("Would delete 1 ")
    assert remaining() == {old.pk}


def test_deletion_goes_in_batches_with_a_progress_bar():
    for _ in range(5):
        email_created_days_ago(40, EmailStatus.SENT)
    output = prune("--older-than", "30", "--batch-size", "2")
    progress = [line.split("% ")[1].split(" ")[0] for line in output.split("\r")[1:]]
    assert progress == ["2/5", "4/5", "5/5"]
    assert "Deleted 5 of 5 cancelled/failed/sent emails created before" in output
    assert remaining() == set()


@pytest.mark.parametrize("batches", [1, 3])
def test_each_batch_costs_the_same_queries(batches, django_assert_num_queries):
    for _ in range(2 * batches):
        email_created_days_ago(40, EmailStatus.SENT)
    # The count; per batch: savepoint, ids, the rows, delete recipients and events, unlink
    # resends, delete the Emails, release; and a last savepoint, empty look, release.
    with django_assert_num_queries(1 + 8 * batches + 3):
        prune("--older-than", "30", "--batch-size", "2")
