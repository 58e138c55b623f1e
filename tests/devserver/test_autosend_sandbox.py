"""The AutoSend sandbox: validation, authentication, rate limit, answers, webhooks, faults."""

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from qstash import QStash

from autosend_queue.devserver import DevServer

from .conftest import Destination, Reply

KEY = "AS_test_key"
WEBHOOK_SECRET = "whsec_test"


def _email(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "to": {"email": "ada@example.com", "name": "Ada"},
        "from": {"email": "hello@example.org"},
        "subject": "Welcome",
        "html": "<p>Hi</p>",
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


def _bulk(**changes: Any) -> dict[str, Any]:
    payload = _email(to=None, recipients=[{"email": "ada@example.com"}])
    payload.update(changes)
    return payload


def _post(
    http: httpx.Client, dev: DevServer, path: str, payload: Any, key: str | None = KEY
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return http.post(f"{dev.autosend_api_url}/mails/{path}", json=payload, headers=headers)


def _details(response: httpx.Response) -> list[str]:
    """The fields named in a VALIDATION_FAILED answer."""
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_FAILED"
    assert response.json()["success"] is False
    return [detail["field"] for detail in error["details"]]


@pytest.fixture
def webhooks(dev: DevServer, receiver: Destination) -> Iterator[Destination]:
    dev.sandbox.configure_webhook(receiver.url + "/webhooks", WEBHOOK_SECRET)
    yield receiver
    dev.sandbox.configure_webhook(None, None)


# Validation, one rule each.


def test_missing_to_is_refused(dev: DevServer, http: httpx.Client) -> None:
    assert _details(_post(http, dev, "send", _email(to=None))) == ["to"]


def test_invalid_to_address_is_refused(dev: DevServer, http: httpx.Client) -> None:
    response = _post(http, dev, "send", _email(to={"email": "not an address"}))

    assert _details(response) == ["to.email"]


def test_missing_from_is_refused(dev: DevServer, http: httpx.Client) -> None:
    assert _details(_post(http, dev, "send", _email(**{"from": None}))) == ["from"]


def test_invalid_from_address_is_refused(dev: DevServer, http: httpx.Client) -> None:
    response = _post(http, dev, "send", _email(**{"from": {"email": "hello@"}}))

    assert _details(response) == ["from.email"]


def test_missing_content_is_refused(dev: DevServer, http: httpx.Client) -> None:
    response = _post(http, dev, "send", _email(subject=None, html=None))

    assert _details(response) == ["subject", "html"]


def test_subject_without_html_or_text_is_refused(dev: DevServer, http: httpx.Client) -> None:
    assert _details(_post(http, dev, "send", _email(html=None))) == ["html"]


def test_subject_longer_than_998_characters_is_refused(dev: DevServer, http: httpx.Client) -> None:
    assert _details(_post(http, dev, "send", _email(subject="x" * 999))) == ["subject"]


def test_subject_of_998_characters_is_accepted(dev: DevServer, http: httpx.Client) -> None:
    assert _post(http, dev, "send", _email(subject="x" * 998)).status_code == 200


def test_more_than_50_recipients_is_refused(dev: DevServer, http: httpx.Client) -> None:
    copies = [{"email": f"c{n}@example.com"} for n in range(25)]

    response = _post(http, dev, "send", _email(cc=copies, bcc=copies))

    assert _details(response) == ["to"]


def test_invalid_cc_address_is_refused(dev: DevServer, http: httpx.Client) -> None:
    response = _post(http, dev, "send", _email(cc=[{"email": "x"}]))

    assert _details(response) == ["cc[0].email"]


def test_non_object_body_is_refused(dev: DevServer, http: httpx.Client) -> None:
    assert _details(_post(http, dev, "send", ["not", "an", "object"])) == ["body"]


def test_template_without_subject_is_accepted(dev: DevServer, http: httpx.Client) -> None:
    payload = _email(subject=None, html=None, templateId="A-123", dynamicData={"n": 1})

    assert _post(http, dev, "send", payload).status_code == 200


def test_bulk_without_recipients_is_refused(dev: DevServer, http: httpx.Client) -> None:
    assert _details(_post(http, dev, "bulk", _bulk(recipients=[]))) == ["recipients"]


def test_bulk_with_more_than_100_recipients_is_refused(dev: DevServer, http: httpx.Client) -> None:
    recipients = [{"email": f"r{n}@example.com"} for n in range(101)]

    assert _details(_post(http, dev, "bulk", _bulk(recipients=recipients))) == ["recipients"]


def test_bulk_recipient_with_invalid_address_is_refused(dev: DevServer, http: httpx.Client) -> None:
    recipients = [{"email": "ok@example.com"}, {"email": "broken"}]

    response = _post(http, dev, "bulk", _bulk(recipients=recipients))

    assert _details(response) == ["recipients[1].email"]


def test_refused_email_is_not_kept(dev: DevServer, http: httpx.Client) -> None:
    _post(http, dev, "send", _email(to=None))

    assert dev.sandbox.emails == []


# Answers.


def test_send_answers_an_email_id(dev: DevServer, http: httpx.Client) -> None:
    response = _post(http, dev, "send", _email())

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert re.fullmatch(r"[0-9a-f]{24}", body["data"]["emailId"])
    assert body["data"]["message"] == "Email queued successfully."
    assert body["data"]["totalRecipients"] == 1
    assert dev.sandbox.emails[0].id == body["data"]["emailId"]


def test_bulk_answers_a_batch_id_and_counts(dev: DevServer, http: httpx.Client) -> None:
    recipients = [{"email": f"r{n}@example.com", "dynamicData": {"n": n}} for n in range(3)]

    response = _post(http, dev, "bulk", _bulk(recipients=recipients))

    data = response.json()["data"]
    assert uuid.UUID(data["batchId"])
    assert (data["totalRecipients"], data["successCount"], data["failedCount"]) == (3, 3, 0)


# Authentication and rate limit.


def test_missing_key_is_refused_with_401(dev: DevServer, http: httpx.Client) -> None:
    response = _post(http, dev, "send", _email(), key=None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_key_without_as_prefix_is_refused_with_401(dev: DevServer, http: httpx.Client) -> None:
    assert _post(http, dev, "send", _email(), key="sk_live_x").status_code == 401


def test_configured_key_must_match_exactly(http: httpx.Client) -> None:
    with DevServer(qstash_port=0, autosend_port=0, autosend_api_key="AS_right") as dev:
        assert _post(http, dev, "send", _email(), key="AS_wrong").status_code == 401
        assert _post(http, dev, "send", _email(), key="AS_right").status_code == 200


def test_third_request_in_a_second_is_rate_limited(http: httpx.Client) -> None:
    with DevServer(qstash_port=0, autosend_port=0, rate_limit=2) as dev:
        answers = [_post(http, dev, "send", _email()) for _ in range(3)]
        other_key = _post(http, dev, "send", _email(), key="AS_other")

    assert [a.status_code for a in answers] == [200, 200, 429]
    limited = answers[2]
    assert limited.json() == {
        "success": False,
        "error": {"message": limited.json()["error"]["message"], "code": "RATE_LIMITED"},
        "retryAfter": 1,
    }
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Limit"] == "2"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert other_key.status_code == 200


# Webhooks.


def test_send_posts_sent_then_delivered_webhooks(
    dev: DevServer, http: httpx.Client, webhooks: Destination
) -> None:
    email_id = _post(http, dev, "send", _email()).json()["data"]["emailId"]

    sent, delivered = webhooks.wait_for(2)

    assert [sent.json()["type"], delivered.json()["type"]] == ["email.sent", "email.delivered"]
    assert delivered.headers["x-webhook-event"] == "email.delivered"
    data = delivered.json()["data"]
    assert data["emailId"] == email_id
    assert data["to"] == {"email": "ada@example.com", "name": "Ada"}
    assert (data["subject"], data["test"]) == ("Welcome", True)
    assert data["from"] == {"email": "hello@example.org"}
    assert delivered.json()["createdAt"].endswith("Z")
    assert abs(int(delivered.headers["x-webhook-timestamp"]) - time.time() * 1000) < 5000


def test_webhook_signature_is_hmac_of_the_raw_body(
    dev: DevServer, http: httpx.Client, webhooks: Destination
) -> None:
    _post(http, dev, "send", _email())

    for webhook in webhooks.wait_for(2):
        expected = hmac.new(WEBHOOK_SECRET.encode(), webhook.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(webhook.headers["x-webhook-signature"], expected)


def test_bulk_posts_a_webhook_pair_per_recipient_with_the_batch_id(
    dev: DevServer, http: httpx.Client, webhooks: Destination
) -> None:
    recipients = [{"email": "a@example.com"}, {"email": "b@example.com"}]
    batch_id = _post(http, dev, "bulk", _bulk(recipients=recipients)).json()["data"]["batchId"]

    events = [w.json() for w in webhooks.wait_for(4)]

    assert {e["data"]["batchId"] for e in events} == {batch_id}
    assert sorted((e["data"]["to"]["email"], e["type"]) for e in events) == [
        ("a@example.com", "email.delivered"),
        ("a@example.com", "email.sent"),
        ("b@example.com", "email.delivered"),
        ("b@example.com", "email.sent"),
    ]


def test_webhook_retry_keeps_the_delivery_id(
    dev: DevServer, http: httpx.Client, webhooks: Destination
) -> None:
    webhooks.reply_with(Reply(500))
    _post(http, dev, "send", _email())

    first, retry, delivered = webhooks.wait_for(3)

    assert first.headers["x-webhook-delivery-id"] == retry.headers["x-webhook-delivery-id"]
    assert first.body == retry.body
    assert delivered.headers["x-webhook-delivery-id"] != first.headers["x-webhook-delivery-id"]


# Fault switches.


def test_fail_next_answers_500_then_recovers(dev: DevServer, http: httpx.Client) -> None:
    dev.sandbox.fail_next(2)

    statuses = [_post(http, dev, "send", _email()).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert len(dev.sandbox.emails) == 1


def test_unauthorized_switch_answers_401_to_a_valid_key(dev: DevServer, http: httpx.Client) -> None:
    dev.sandbox.set_unauthorized()

    assert _post(http, dev, "send", _email()).status_code == 401


def test_slow_switch_delays_the_answer(dev: DevServer, http: httpx.Client) -> None:
    dev.sandbox.set_slow(0.2)

    started = time.monotonic()
    assert _post(http, dev, "send", _email()).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_faults_can_be_set_over_http(dev: DevServer, http: httpx.Client) -> None:
    answer = http.post(f"{dev.autosend_url}/_sandbox/faults", json={"fail_next": 1})

    assert answer.json() == {"fail_next": 1, "unauthorized": False, "slow_seconds": 0.0}
    assert _post(http, dev, "send", _email()).status_code == 500
    assert _post(http, dev, "send", _email()).status_code == 200


def test_empty_faults_over_http_reset_them(dev: DevServer, http: httpx.Client) -> None:
    dev.sandbox.set_unauthorized()

    http.post(f"{dev.autosend_url}/_sandbox/faults", json={})

    assert dev.sandbox.faults.unauthorized is False
    assert _post(http, dev, "send", _email()).status_code == 200


def test_sandbox_emails_lists_received_emails_as_json(dev: DevServer, http: httpx.Client) -> None:
    _post(http, dev, "send", _email(subject="First"))
    _post(http, dev, "bulk", _bulk(subject="Second"))

    emails = http.get(f"{dev.autosend_url}/_sandbox/emails").json()

    assert [(e["kind"], e["payload"]["subject"]) for e in emails] == [
        ("send", "First"),
        ("bulk", "Second"),
    ]
    assert emails[0]["apiKey"] == KEY


# Through QStash.


def test_qstash_delivers_to_the_sandbox_with_the_forwarded_key_and_retries_a_500(
    dev: DevServer, client: QStash
) -> None:
    dev.sandbox.fail_next(1)

    client.message.publish_json(
        url=dev.autosend_api_url + "/mails/send",
        body=_email(),
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert dev.wait_idle()

    assert [a.status for a in dev.attempts] == [500, 200]
    [email] = dev.sandbox.emails
    assert email.api_key == KEY
