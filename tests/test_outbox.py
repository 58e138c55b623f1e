"""The outbox: rows in the caller's transaction, one publish when it commits."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from autosend_queue import cancel, resend, send_bulk, send_email
from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailEvent, EmailRecipient, EmailStatus
from autosend_queue.transports import locmem
from tests.factories import EmailFactory, QueuedEmailFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def welcome(to: str = "Ada <ada@example.com>", **fields) -> Email:
    return send_email(to, **{"subject": "Welcome", "html": "<p>Hi</p>", **fields})


def test_send_email_writes_a_pending_row_until_commit():
    with transaction.atomic():
        email = welcome()
        assert Email.objects.get().status == EmailStatus.PENDING
        assert locmem.outbox == []
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED


def test_the_row_keeps_the_body_and_search_fields():
    email = welcome(cc=["c@example.com"])
    assert email.payload["to"] == {"email": "ada@example.com", "name": "Ada"}
    assert email.to_email == "ada@example.com"
    assert email.subject == "Welcome"
    assert set(EmailRecipient.objects.values_list("address", flat=True)) == {
        "ada@example.com",
        "c@example.com",
    }


def test_commit_publishes_and_records_the_message_id():
    email = welcome()
    email.refresh_from_db()
    (published,) = locmem.outbox
    assert published.email_uuid == str(email.uuid)
    assert email.qstash_message_id == published.message_id
    assert email.published_at is not None
    assert list(email.events.values_list("kind", flat=True)) == ["created", "published"]


def failing_view(*subjects: str) -> None:
    with transaction.atomic():
        for subject in subjects:
            welcome(subject=subject)
        raise RuntimeError("the view failed")


def test_a_rolled_back_transaction_publishes_nothing():
    with pytest.raises(RuntimeError):
        failing_view("dropped")
    assert locmem.outbox == []
    assert not Email.objects.exists()


def test_a_rolled_back_savepoint_publishes_only_what_survived():
    with transaction.atomic():
        kept = welcome(subject="kept")
        with pytest.raises(RuntimeError):
            failing_view("dropped")
    assert [message.email_uuid for message in locmem.outbox] == [str(kept.uuid)]


def test_emails_written_in_one_transaction_are_published_in_one_call(mocker_transport_calls):
    with transaction.atomic():
        for index in range(5):
            welcome(subject=f"n{index}")
    assert mocker_transport_calls == [5]


def test_invalid_input_writes_nothing():
    with pytest.raises(InvalidPayload):
        welcome(to="broken")
    assert not Email.objects.exists()


def test_a_repeated_dedup_key_returns_the_first_email_and_publishes_nothing_more():
    first = welcome(dedup_key="welcome:42")
    again = welcome(dedup_key="welcome:42", subject="changed")
    assert again.pk == first.pk
    assert Email.objects.count() == 1
    assert len(locmem.outbox) == 1


def test_delay_in_seconds_schedules_the_email():
    before = timezone.now()
    email = welcome(delay=90)
    assert (
        before + timedelta(seconds=90)
        <= email.scheduled_at
        <= timezone.now() + timedelta(seconds=90)
    )
    assert locmem.outbox[0].message["not_before"] == math.ceil(email.scheduled_at.timestamp())


def test_delay_as_timedelta_schedules_the_email():
    email = welcome(delay=timedelta(hours=2))
    assert email.scheduled_at - email.created_at == pytest.approx(
        timedelta(hours=2), abs=timedelta(seconds=2)
    )


def test_send_at_is_stored_as_the_instant():
    when = timezone.now() + timedelta(days=1)
    assert welcome(send_at=when).scheduled_at == when


def test_an_immediate_email_has_no_not_before():
    welcome()
    assert "not_before" not in locmem.outbox[0].message


def test_naive_send_at_is_refused():
    with pytest.raises(InvalidPayload) as caught:
        welcome(send_at=datetime(2030, 1, 1))
    assert (caught.value.field, caught.value.rule) == ("send_at", "aware")


def test_delay_and_send_at_together_are_refused():
    with pytest.raises(InvalidPayload) as caught:
        welcome(delay=5, send_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert caught.value.rule == "exclusive"


def test_negative_delay_is_refused():
    with pytest.raises(InvalidPayload) as caught:
        welcome(delay=-1)
    assert (caught.value.field, caught.value.rule) == ("delay", "min_value")


def test_an_email_beyond_max_delay_stays_pending():
    email = welcome(delay=timedelta(days=8))
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING
    assert locmem.outbox == []


def test_max_delay_is_a_setting(autosend_settings):
    autosend_settings(MAX_DELAY=timedelta(days=365))
    email = welcome(delay=timedelta(days=30))
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED


def test_the_user_is_kept():
    user = UserFactory()
    assert welcome(user=user).user == user


def test_templated_email_keeps_the_template_id():
    email = send_email("a@example.com", template_id="A-42", dynamic_data={"plan": "pro"}, delay=60)
    assert email.template_id == "A-42"
    assert email.payload["dynamicData"] == {"plan": "pro"}


def test_send_bulk_writes_one_email_per_hundred_recipients():
    emails = send_bulk([f"r{i}@example.com" for i in range(250)], template_id="A-1")
    assert [email.recipient_count for email in emails] == [100, 100, 50]
    assert all(email.kind == "bulk" for email in emails)
    assert len(locmem.outbox) == 3


def test_send_bulk_with_a_used_dedup_key_returns_the_same_emails():
    first = send_bulk(["a@example.com", "b@example.com"], template_id="A-1", dedup_key="promo")
    again = send_bulk(["a@example.com", "b@example.com"], template_id="A-1", dedup_key="promo")
    assert [email.pk for email in again] == [email.pk for email in first]
    assert len(locmem.outbox) == 1


def test_the_api_key_is_never_stored():
    email = welcome()
    stored = str(Email.objects.filter(pk=email.pk).values().get()) + str(
        list(EmailEvent.objects.values())
    )
    assert "AS_test_key" not in stored


def test_resend_copies_the_body_links_the_original_and_publishes_now():
    original = QueuedEmailFactory(idempotency_key="once")
    copy = resend(original)
    copy.refresh_from_db()
    assert copy.payload == original.payload
    assert copy.resent_from == original
    assert copy.idempotency_key is None
    assert copy.status == EmailStatus.QUEUED
    assert original.events.filter(kind=EmailEvent.Kind.RESENT).exists()


def test_cancel_a_pending_email_means_it_never_publishes():
    email = EmailFactory(scheduled_at=timezone.now() + timedelta(days=30))
    assert cancel(email) == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.CANCELLED


def test_cancel_a_queued_email_cancels_it_in_qstash():
    email = QueuedEmailFactory()
    cancel(Email.objects.filter(pk=email.pk))
    assert locmem.cancelled == [email.qstash_message_id]


def test_cancel_leaves_sent_emails_alone():
    email = QueuedEmailFactory(status=EmailStatus.SENT)
    assert cancel([email]) == 0
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert locmem.cancelled == []


def test_a_callback_that_overtakes_the_publish_answer_keeps_the_message_id(monkeypatch):
    from autosend_queue import states
    from autosend_queue.transports.locmem import LocmemTransport

    original = LocmemTransport.publish

    def deliver_before_answering(self, emails):
        results = original(self, emails)
        states.transition([email.pk for email in emails], states.SENT)
        return results

    monkeypatch.setattr(LocmemTransport, "publish", deliver_before_answering)
    email = welcome()
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.qstash_message_id == locmem.outbox[0].message_id


def test_not_before_never_falls_before_the_scheduled_instant():
    when = timezone.now().replace(microsecond=900_000) + timedelta(minutes=5)
    welcome(send_at=when)
    assert locmem.outbox[0].message["not_before"] >= when.timestamp()


@pytest.mark.postgres
def test_two_concurrent_sends_with_one_dedup_key_write_one_email():
    import threading
    import time

    from django.db import connection

    start = threading.Barrier(2)
    results: list[int] = []

    def send(hold_open: float) -> None:
        try:
            start.wait()
            with transaction.atomic():
                results.append(welcome(dedup_key="receipt:7").pk)
                time.sleep(hold_open)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(hold,)) for hold in (0.3, 0.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Email.objects.count() == 1
    assert results == [Email.objects.get().pk] * 2
