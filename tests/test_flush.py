"""``autosend_flush``: publish what is pending and due, in batches, safely."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from autosend_queue import send_email
from autosend_queue.models import Email, EmailStatus
from autosend_queue.outbox import flush
from tests.factories import EmailFactory
from tests.helpers import accept_batch

pytestmark = pytest.mark.django_db


def run_flush(*args: str) -> str:
    out = StringIO()
    call_command("autosend_flush", *args, stdout=out)
    return out.getvalue()


def test_flush_publishes_10_000_pending_emails_in_100_calls(qstash):
    Email.objects.bulk_create(EmailFactory.build() for _ in range(10_000))
    route = accept_batch(qstash)
    summary = flush()
    assert (summary.queued, summary.calls, route.call_count) == (10_000, 100, 100)
    assert not Email.objects.filter(status=EmailStatus.PENDING).exists()


def test_flush_leaves_emails_beyond_max_delay_pending(qstash):
    far = EmailFactory(scheduled_at=timezone.now() + timedelta(days=30))
    near = EmailFactory(scheduled_at=timezone.now() + timedelta(days=6))
    accept_batch(qstash)
    flush()
    far.refresh_from_db()
    near.refresh_from_db()
    assert (far.status, near.status) == (EmailStatus.PENDING, EmailStatus.QUEUED)


def test_flush_publishes_a_far_email_once_it_comes_within_reach(qstash):
    email = EmailFactory(scheduled_at=timezone.now() + timedelta(days=30))
    Email.objects.filter(pk=email.pk).update(scheduled_at=timezone.now() + timedelta(days=2))
    accept_batch(qstash)
    flush()
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED


def test_flush_ignores_emails_that_are_not_pending(qstash):
    EmailFactory(status=EmailStatus.CANCELLED)
    EmailFactory(status=EmailStatus.SENT)
    route = accept_batch(qstash)
    assert flush().calls == 0
    assert route.call_count == 0


def test_when_qstash_is_down_the_emails_stay_pending_and_flush_stops(qstash):
    EmailFactory.create_batch(150)
    route = qstash.post("/v2/batch").mock(side_effect=httpx.ConnectError("down"))
    summary = flush()
    assert (summary.deferred, summary.calls) == (150, 2)
    assert route.call_count == 2 * 3  # the SDK's own two retries per call
    assert Email.objects.filter(status=EmailStatus.PENDING, publish_attempts=1).count() == 150


@pytest.mark.django_db(transaction=True)
def test_pending_emails_from_an_outage_are_sent_by_the_next_flush(qstash):
    down = qstash.post("/v2/batch").mock(side_effect=httpx.ConnectError("down"))
    email = send_email("a@example.com", subject="S", text="T")
    down.side_effect = None
    accept_batch(qstash)
    flush()
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED


def test_the_command_prints_a_summary(qstash):
    EmailFactory.create_batch(3)
    accept_batch(qstash)
    assert run_flush() == (
        "Published 3 emails in 1 QStash calls; 0 stay pending (QStash unreachable), 0 refused.\n"
    )


def test_dry_run_counts_and_publishes_nothing(qstash):
    EmailFactory.create_batch(3)
    route = accept_batch(qstash)
    assert run_flush("--dry-run") == "3 pending emails are due.\n"
    assert route.call_count == 0
    assert Email.objects.filter(status=EmailStatus.PENDING).count() == 3


def test_flush_locks_rows_with_skip_locked(
    qstash, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    from django.db import connection

    EmailFactory()
    accept_batch(qstash)
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        flush()
    select = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT"))
    if connection.features.has_select_for_update_skip_locked:
        assert "SKIP LOCKED" in select
    else:
        assert "FOR UPDATE" not in select
