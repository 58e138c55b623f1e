"""Applying QStash callbacks: statuses, the event log, signals, and callbacks out of order."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from autosend_queue.callbacks import Outcome, apply_callback
from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailEvent, EmailKind, EmailStatus
from autosend_queue.signals import email_failed, email_sent
from tests.factories import EmailFactory, QueuedEmailFactory
from tests.signing import callback_document, failure_document, post_signed

pytestmark = pytest.mark.django_db

VALIDATION_ERROR = {
    "success": False,
    "error": {"message": "Missing recipient", "code": "VALIDATION_FAILED"},
}
SERVER_ERROR = {"success": False, "error": {"message": "Upstream down", "code": "INTERNAL"}}

# A delivery that failed twice and then succeeded, and one whose retries all failed.
HISTORY: dict[str, Callable[[], dict[str, Any]]] = {
    "retry_1": lambda: callback_document(status=500, answer=SERVER_ERROR, retried=0),
    "retry_2": lambda: callback_document(status=429, answer=SERVER_ERROR, retried=1),
    "sent": lambda: callback_document(status=200, retried=2),
    "last": lambda: callback_document(status=500, answer=SERVER_ERROR, retried=3),
    "failure": lambda: failure_document(answer=SERVER_ERROR, retried=3),
}


class Recorded:
    """Every email_sent / email_failed signal sent during a test."""

    def __init__(self) -> None:
        self.sent: list[Email] = []
        self.failed: list[tuple[Email, str]] = []
        self.lock = threading.Lock()

    def on_sent(self, sender: type[Email], email: Email, **kwargs: Any) -> None:
        with self.lock:
            self.sent.append(email)

    def on_failed(self, sender: type[Email], email: Email, reason: str, **kwargs: Any) -> None:
        with self.lock:
            self.failed.append((email, reason))


@pytest.fixture
def signals():
    recorded = Recorded()
    email_sent.connect(recorded.on_sent, sender=Email, weak=False)
    email_failed.connect(recorded.on_failed, sender=Email, weak=False)
    yield recorded
    email_sent.disconnect(recorded.on_sent, sender=Email)
    email_failed.disconnect(recorded.on_failed, sender=Email)


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """Apply a callback to an Email as the view does, running what waits for the commit."""

    def apply(email: Email, document: dict[str, Any], *, failure: bool = False) -> Outcome:
        with django_capture_on_commit_callbacks(execute=True):
            outcome = apply_callback(email.uuid, document, failure=failure)
        email.refresh_from_db()
        return outcome

    return apply


def deliver_named(deliver, email: Email, name: str) -> Outcome:
    return deliver(email, HISTORY[name](), failure=name == "failure")


def last_event(email: Email) -> EmailEvent:
    return email.events.order_by("-id").first()


# Success


def test_a_2xx_answer_marks_the_email_sent_with_autosends_email_id(deliver):
    email = QueuedEmailFactory()
    answer = {"success": True, "data": {"emailId": "65f1c0ffee0123456789abcd"}}
    assert deliver(email, callback_document(status=200, answer=answer)) == Outcome.APPLIED
    assert email.status == EmailStatus.SENT
    assert email.autosend_email_id == "65f1c0ffee0123456789abcd"
    assert email.sent_at is not None


def test_a_bulk_success_keeps_autosends_batch_id(deliver):
    email = QueuedEmailFactory(kind=EmailKind.BULK)
    answer = {"success": True, "data": {"batchId": "0b6f4b5e-1c1e-4c8e", "totalRecipients": 7}}
    deliver(email, callback_document(status=202, answer=answer))
    assert (email.status, email.autosend_batch_id) == (EmailStatus.SENT, "0b6f4b5e-1c1e-4c8e")


def test_success_clears_the_error_of_an_earlier_attempt(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=0))
    deliver(email, callback_document(status=200, retried=1))
    assert email.last_error == ""


def test_an_id_in_the_answer_that_is_not_an_id_is_left_out(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(answer={"data": {"emailId": {"$gt": ""}}}))
    assert (email.status, email.autosend_email_id) == (EmailStatus.SENT, "")


# Failed attempts


def test_a_failed_attempt_with_retries_left_is_retrying_with_autosends_error(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=400, answer=VALIDATION_ERROR, retried=0))
    assert email.status == EmailStatus.RETRYING
    assert email.last_error == "HTTP 400 VALIDATION_FAILED: Missing recipient"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"success": False, "error": "Invalid API key"}, "HTTP 401: Invalid API key"),
        ({"message": "Too many requests", "retryAfter": 1}, "HTTP 401: Too many requests"),
        (b"<html>Bad gateway</html>", "HTTP 401: <html>Bad gateway</html>"),
        (b"", "HTTP 401"),
    ],
    ids=["plain-string-error", "top-level-message", "not-json", "empty"],
)
def test_every_shape_of_autosend_error_becomes_the_last_error(deliver, answer, error):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=401, answer=answer, retried=0))
    assert email.last_error == error


def test_the_last_attempt_failing_marks_the_email_failed(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=3, max_retries=3))
    assert email.status == EmailStatus.FAILED
    assert email.last_error == "HTTP 500 INTERNAL: Upstream down"
    assert last_event(email).kind == EmailEvent.Kind.FAILED


def test_the_failure_callback_marks_the_email_failed_with_its_dlq_id(deliver):
    email = QueuedEmailFactory()
    deliver(email, failure_document(dlq_id="dlq_7"), failure=True)
    assert (email.status, email.dlq_id) == (EmailStatus.FAILED, "dlq_7")


def test_the_failure_callback_after_the_last_attempts_callback_still_keeps_the_dlq_id(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=3))
    assert deliver(email, failure_document(dlq_id="dlq_7"), failure=True) == Outcome.IGNORED
    assert (email.status, email.dlq_id) == (EmailStatus.FAILED, "dlq_7")


def test_an_older_attempts_error_does_not_replace_a_newer_ones(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=400, answer=VALIDATION_ERROR, retried=1))
    deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=0))
    assert email.last_error == "HTTP 400 VALIDATION_FAILED: Missing recipient"


# Attempts


def test_attempts_is_the_highest_attempt_number_seen(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=2))
    deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=0))
    assert email.attempts == 3


def test_an_attempt_on_a_cancelled_email_is_counted_but_changes_nothing_else(deliver):
    email = QueuedEmailFactory(status=EmailStatus.CANCELLED)
    outcome = deliver(email, callback_document(status=500, answer=SERVER_ERROR, retried=1))
    assert (outcome, email.status, email.attempts) == (Outcome.IGNORED, EmailStatus.CANCELLED, 2)
    assert email.last_error == ""


# The event log


def test_every_callback_appends_an_event_with_the_attempt_status_code_and_answer(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=400, answer=VALIDATION_ERROR, retried=1))
    event = last_event(email)
    assert event.kind == EmailEvent.Kind.ATTEMPT
    assert (event.data["attempt"], event.data["status_code"]) == (2, 400)
    assert json.loads(event.data["answer"]) == VALIDATION_ERROR
    assert event.data["error"] == {"message": "Missing recipient", "code": "VALIDATION_FAILED"}


def test_a_long_answer_is_trimmed_in_the_event(deliver):
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=500, answer=b"x" * 50_000))
    assert len(last_event(email).data["answer"]) == 2000


def test_neither_the_api_key_nor_the_forwarded_authorization_header_is_stored(deliver, settings):
    api_key = settings.AUTOSEND_QUEUE["API_KEY"]
    answer = {"success": False, "error": {"message": f"Key {api_key} is revoked", "code": "E"}}
    email = QueuedEmailFactory()
    deliver(email, callback_document(status=401, answer=answer))
    stored = json.dumps(list(email.events.values_list("data", flat=True))) + email.last_error
    assert api_key not in stored
    assert "Bearer" not in stored
    assert "[redacted]" in email.last_error


def test_a_callback_for_another_qstash_message_applies_and_notes_the_mismatch(deliver):
    email = QueuedEmailFactory(qstash_message_id="msg_expected")
    deliver(email, callback_document(status=200, message_id="msg_other"))
    assert email.status == EmailStatus.SENT
    data = last_event(email).data
    assert (data["message_id"], data["expected_message_id"]) == ("msg_other", "msg_expected")


@pytest.mark.parametrize("created_at", [1_717_000_000_123, "1717000000123"])
def test_created_at_is_read_as_milliseconds_whether_a_number_or_a_string(deliver, created_at):
    email = QueuedEmailFactory()
    deliver(email, callback_document(createdAt=created_at))
    assert last_event(email).data["created_at"] == "2024-05-29T16:26:40.123000+00:00"


# Unknown emails and bad bodies


def test_a_callback_for_an_unknown_email_is_acknowledged_and_changes_nothing():
    orphan = EmailFactory.build()
    assert apply_callback(orphan.uuid, callback_document(), failure=False) == Outcome.UNKNOWN_EMAIL
    assert not EmailEvent.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"status": None}, "status", "required"),
        ({"status": "two hundred"}, "status", "type"),
        ({"status": 42}, "status", "range"),
        ({"retried": True}, "retried", "type"),
        ({"retried": -1}, "retried", "range"),
        ({"retried": 1.5}, "retried", "type"),
        ({"maxRetries": None}, "maxRetries", "required"),
        ({"body": "%%% not base64"}, "body", "base64"),
        ({"body": ["aGk="]}, "body", "type"),
        ({"dlqId": "d" * 101}, "dlqId", "max_length"),
        ({"sourceMessageId": 7}, "sourceMessageId", "type"),
        ({"createdAt": "yesterday"}, "createdAt", "type"),
        ({"createdAt": 10**20}, "createdAt", "range"),
    ],
)
def test_a_body_qstash_would_not_send_is_refused_naming_the_field_and_rule(change, field, rule):
    email = QueuedEmailFactory()
    with pytest.raises(InvalidPayload) as refusal:
        apply_callback(email.uuid, {**callback_document(), **change}, failure=False)
    assert (refusal.value.field, refusal.value.rule) == (field, rule)
    assert not email.events.exists()


# Out of order, duplicates, and signals


def test_a_late_retrying_after_sent_is_logged_and_ignored(deliver):
    email = QueuedEmailFactory()
    deliver_named(deliver, email, "sent")
    assert deliver_named(deliver, email, "retry_1") == Outcome.IGNORED
    assert email.status == EmailStatus.SENT
    event = last_event(email)
    assert (event.kind, event.data["ignored_because"]) == ("ignored", "the email is sent")


def test_a_success_after_a_cancel_records_sent_because_the_email_went_out(deliver, signals):
    email = QueuedEmailFactory(status=EmailStatus.CANCELLED)
    deliver_named(deliver, email, "sent")
    assert email.status == EmailStatus.SENT
    assert [sent.pk for sent in signals.sent] == [email.pk]


def test_a_success_callback_sends_email_sent_once_however_often_it_arrives(deliver, signals):
    email = QueuedEmailFactory()
    for _ in range(3):
        deliver_named(deliver, email, "sent")
    assert [(sent.pk, sent.status) for sent in signals.sent] == [(email.pk, EmailStatus.SENT)]
    assert list(email.events.values_list("kind", flat=True)) == ["attempt", "ignored", "ignored"]


def test_email_failed_is_sent_once_with_the_reason(deliver, signals):
    email = QueuedEmailFactory()
    deliver_named(deliver, email, "last")
    deliver_named(deliver, email, "failure")
    assert [(failed.pk, reason) for failed, reason in signals.failed] == [
        (email.pk, "HTTP 500 INTERNAL: Upstream down")
    ]
    assert signals.sent == []


def test_signals_wait_for_the_commit(django_capture_on_commit_callbacks, signals):
    email = QueuedEmailFactory()
    with django_capture_on_commit_callbacks() as waiting:
        apply_callback(email.uuid, HISTORY["sent"](), failure=False)
        assert signals.sent == []
    for callback in waiting:
        callback()
    assert len(signals.sent) == 1


def expected_status(names: tuple[str, ...]) -> str:
    """Sent if any attempt succeeded; else failed if the retries ran out; else retrying."""
    if "sent" in names:
        return EmailStatus.SENT
    if {"last", "failure"} & set(names):
        return EmailStatus.FAILED
    return EmailStatus.RETRYING


@pytest.mark.parametrize(
    "pair", list(itertools.product(HISTORY, repeat=2)), ids=lambda pair: "-then-".join(pair)
)
def test_every_pair_of_callbacks_in_either_order_ends_in_the_same_state(deliver, signals, pair):
    email = QueuedEmailFactory()
    for name in pair:
        deliver_named(deliver, email, name)
    assert email.status == expected_status(pair)
    assert email.attempts == max(HISTORY[name]()["retried"] + 1 for name in pair)
    assert email.dlq_id == ("dlq_00000001" if "failure" in pair else "")
    assert len(signals.sent) == ("sent" in pair)
    assert email.events.count() == 2


@pytest.mark.parametrize(
    "order",
    [
        *itertools.permutations(["retry_1", "retry_2", "last", "failure"]),
        *itertools.permutations(["retry_1", "retry_2", "sent", "sent"]),
    ],
    ids="-".join,
)
def test_a_whole_history_in_any_order_ends_in_its_final_state(deliver, signals, order):
    email = QueuedEmailFactory()
    for name in order:
        deliver_named(deliver, email, name)
    assert email.status == expected_status(order)
    assert len(signals.sent) + len(signals.failed) == 1


# Concurrency, on PostgreSQL


def post_from_threads(email: Email, documents: list[tuple[dict[str, Any], bool]]) -> list[int]:
    """POST every callback from its own thread, all released together; their status codes."""
    barrier = threading.Barrier(len(documents))
    codes: list[int] = []

    def post(document: dict[str, Any], failure: bool) -> None:
        try:
            client = Client()
            barrier.wait()
            codes.append(post_signed(client, email, document, failure=failure).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=job) for job in documents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("qstash_signing_keys")
def test_50_concurrent_callbacks_end_sent_with_one_signal(signals):
    """Attempts 1 to 40 failed and the 41st succeeded; its callback arrived ten times."""
    email = QueuedEmailFactory()
    failed = [callback_document(status=500, retried=n, max_retries=60) for n in range(40)]
    sent = [callback_document(status=200, retried=40, max_retries=60)] * 10
    codes = post_from_threads(email, [(document, False) for document in failed + sent])
    email.refresh_from_db()
    assert codes == [200] * 50
    assert (email.status, email.attempts) == (EmailStatus.SENT, 41)
    assert len(signals.sent) == 1
    assert email.events.count() == 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("qstash_signing_keys")
def test_50_concurrent_failing_callbacks_end_failed_with_one_signal(signals):
    email = QueuedEmailFactory()
    names = ["retry_1", "retry_2", "last", "failure"] * 12 + ["failure", "last"]
    codes = post_from_threads(email, [(HISTORY[name](), name == "failure") for name in names])
    email.refresh_from_db()
    assert codes == [200] * 50
    assert (email.status, email.dlq_id, email.attempts) == (EmailStatus.FAILED, "dlq_00000001", 4)
    assert len(signals.failed) == 1
    assert signals.sent == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("qstash_signing_keys")
def test_50_concurrent_failed_attempts_keep_the_highest_attempt_and_its_error():
    email = QueuedEmailFactory()
    documents = [
        callback_document(
            status=500, answer={"error": f"attempt {n + 1}"}, retried=n, max_retries=60
        )
        for n in range(50)
    ]
    codes = post_from_threads(email, [(document, False) for document in documents])
    email.refresh_from_db()
    assert codes == [200] * 50
    assert (email.status, email.attempts) == (EmailStatus.RETRYING, 50)
    assert email.last_error == "HTTP 500: attempt 50"
