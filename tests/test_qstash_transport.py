"""The qstash transport: the real SDK, its HTTP boundary observed with respx."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

import httpx
import pytest
from django.db import transaction

from autosend_queue import send_bulk, send_email
from autosend_queue.models import Email, EmailEvent, EmailStatus
from autosend_queue.transports import get_transport
from tests.factories import QueuedEmailFactory
from tests.helpers import accept_batch, batch_entries

pytestmark = pytest.mark.django_db(transaction=True)


def welcome(**fields) -> Email:
    return send_email("ada@example.com", **{"subject": "Welcome", "html": "<p>Hi</p>", **fields})


def test_publish_is_one_batch_call_with_the_qstash_token(qstash):
    route = accept_batch(qstash)
    welcome()
    assert route.call_count == 1
    assert route.calls[0].request.headers["Authorization"] == "Bearer qstash-test-token"


def test_each_entry_targets_autosend_with_the_forwarded_key(qstash):
    route = accept_batch(qstash)
    email = welcome()
    (entry,) = batch_entries(route)
    assert entry["destination"] == "https://api.autosend.com/v1/mails/send"
    headers = entry["headers"]
    assert headers["Upstash-Forward-Authorization"] == "Bearer AS_test_key"
    assert headers["Upstash-Method"] == "POST"
    assert headers["Content-Type"] == "application/json"
    assert headers["Upstash-Retries"] == "3"
    assert headers["Upstash-Deduplication-Id"] == str(email.uuid)
    assert headers["Upstash-Callback"] == f"https://app.example.com/autosend/callback/{email.uuid}/"
    assert headers["Upstash-Failure-Callback"] == (
        f"https://app.example.com/autosend/callback/{email.uuid}/failure/"
    )


def test_the_body_is_the_autosend_request(qstash):
    import json

    route = accept_batch(qstash)
    email = welcome()
    assert json.loads(batch_entries(route)[0]["body"]) == email.payload


def test_flow_control_is_keyed_by_a_hash_of_the_api_key_at_the_rate_limit(
    qstash, autosend_settings
):
    autosend_settings(RATE_LIMIT=5)
    route = accept_batch(qstash)
    welcome()
    headers = batch_entries(route)[0]["headers"]
    digest = hashlib.sha256(b"AS_test_key").hexdigest()[:16]
    assert headers["Upstash-Flow-Control-Key"] == f"autosend-{digest}"
    assert headers["Upstash-Flow-Control-Value"] == "parallelism=5, rate=5, period=1s"
    assert "AS_test_key" not in headers["Upstash-Flow-Control-Key"]


def test_a_scheduled_email_is_published_with_not_before(qstash):
    route = accept_batch(qstash)
    email = welcome(delay=timedelta(hours=3))
    assert batch_entries(route)[0]["headers"]["Upstash-Not-Before"] == str(
        math.ceil(email.scheduled_at.timestamp())
    )


def test_bulk_goes_to_the_bulk_endpoint(qstash):
    route = accept_batch(qstash)
    send_bulk(["a@example.com", "b@example.com"], template_id="A-1")
    assert batch_entries(route)[0]["destination"] == "https://api.autosend.com/v1/mails/bulk"


def test_api_url_and_retries_are_settings(qstash, autosend_settings):
    autosend_settings(API_URL="http://127.0.0.1:9/v1/", RETRIES=7)
    route = accept_batch(qstash)
    welcome()
    (entry,) = batch_entries(route)
    assert entry["destination"] == "http://127.0.0.1:9/v1/mails/send"
    assert entry["headers"]["Upstash-Retries"] == "7"


@pytest.mark.parametrize("count", [1, 100, 101, 250])
def test_n_emails_in_one_transaction_take_ceil_n_over_100_calls(qstash, count):
    route = accept_batch(qstash)
    with transaction.atomic():
        for index in range(count):
            welcome(subject=f"n{index}")
    assert route.call_count == math.ceil(count / 100)
    assert Email.objects.filter(status=EmailStatus.QUEUED).count() == count


def test_accepted_emails_are_queued_with_their_message_ids(qstash):
    accept_batch(qstash)
    email = welcome()
    email.refresh_from_db()
    assert (email.status, email.qstash_message_id) == (EmailStatus.QUEUED, "msg_1")


def test_an_error_entry_does_not_lose_the_accepted_ids(qstash):
    qstash.post("/v2/batch").respond(
        201, json=[{"messageId": "msg_a"}, {"error": "invalid destination"}, {"messageId": "msg_c"}]
    )
    with transaction.atomic():
        emails = [welcome(subject=f"n{i}") for i in range(3)]
    states = [
        (e.status, e.qstash_message_id)
        for e in Email.objects.filter(pk__in=[e.pk for e in emails]).order_by("id")
    ]
    assert states == [("queued", "msg_a"), ("failed", ""), ("queued", "msg_c")]
    assert "invalid destination" in Email.objects.get(pk=emails[1].pk).last_error


def test_a_deduplicated_answer_still_queues_the_email(qstash):
    qstash.post("/v2/batch").respond(202, json=[{"messageId": "msg_first", "deduplicated": True}])
    email = welcome()
    email.refresh_from_db()
    assert email.qstash_message_id == "msg_first"
    assert email.events.get(kind=EmailEvent.Kind.PUBLISHED).data["deduplicated"] is True


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="internal"),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(429, text="slow down", headers={"Burst-RateLimit-Reset": "1"}),
        httpx.Response(401, text="unauthorized"),
    ],
    ids=["500", "502", "429", "401"],
)
def test_a_transient_answer_leaves_the_email_pending_with_the_error(qstash, answer):
    qstash.post("/v2/batch").mock(return_value=answer)
    email = welcome()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING
    assert email.publish_attempts == 1
    assert str(answer.status_code) in email.last_error
    assert email.events.filter(kind=EmailEvent.Kind.PUBLISH_FAILED).exists()


def test_a_network_error_leaves_the_email_pending(qstash):
    qstash.post("/v2/batch").mock(side_effect=httpx.ConnectError("refused"))
    email = welcome()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING
    assert "unreachable" in email.last_error


def test_a_timeout_leaves_the_email_pending(qstash):
    qstash.post("/v2/batch").mock(side_effect=httpx.ReadTimeout("slow"))
    email = welcome()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING


def test_a_permanent_rejection_fails_the_email_with_the_reason(qstash):
    qstash.post("/v2/batch").respond(400, text="invalid destination url")
    email = welcome()
    email.refresh_from_db()
    assert email.status == EmailStatus.FAILED
    assert "invalid destination url" in email.last_error


def test_a_rejected_batch_is_retried_one_by_one_to_find_the_bad_message(qstash):
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        import json

        entries = json.loads(request.content)
        calls.append(len(entries))
        if len(entries) > 1 or "bad" in entries[0]["body"]:
            return httpx.Response(400, text="bad message")
        return httpx.Response(201, json=[{"messageId": f"msg_{len(calls)}"}])

    qstash.post("/v2/batch").mock(side_effect=answer)
    with transaction.atomic():
        welcome(subject="good one")
        welcome(subject="bad one")
    assert calls == [2, 1, 1]
    assert sorted(Email.objects.values_list("status", flat=True)) == ["failed", "queued"]


def test_the_client_timeout_is_seconds_not_the_sdks_ten_minutes(qstash, autosend_settings):
    autosend_settings(HTTP_TIMEOUT=4.0)
    timeout = get_transport().client.http._client.timeout
    assert timeout.read == 4.0


def test_cancel_is_one_call_to_qstash(qstash):
    route = qstash.delete("/v2/messages").respond(200, json={"cancelled": 2})
    emails = [QueuedEmailFactory(), QueuedEmailFactory()]
    from autosend_queue import cancel

    cancel(Email.objects.filter(pk__in=[e.pk for e in emails]))
    import json

    assert route.call_count == 1
    assert sorted(json.loads(route.calls[0].request.content)["messageIds"]) == sorted(
        e.qstash_message_id for e in emails
    )


def test_an_error_that_echoes_the_api_key_is_stored_redacted(qstash):
    qstash.post("/v2/batch").respond(400, text="bad header Bearer AS_test_key")
    email = welcome()
    email.refresh_from_db()
    assert "AS_test_key" not in email.last_error
    assert "[redacted]" in email.last_error
    assert "AS_test_key" not in str(list(email.events.values_list("data", flat=True)))
