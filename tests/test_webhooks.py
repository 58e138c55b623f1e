"""AutoSend's delivery webhooks: verified, idempotent, monotonic, and never a 500."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autosend_queue import views, webhooks
from autosend_queue.models import (
    DeliveryStatus,
    Email,
    EmailEvent,
    EmailKind,
    EmailRecipient,
    EmailStatus,
    Enrollment,
)
from autosend_queue.signals import email_event
from autosend_queue.transports import locmem
from tests.factories import (
    EmailFactory,
    EmailRecipientFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
    SentEmailFactory,
)

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"  # tests/settings.py
CREATED_AT = "2025-11-12T10:30:00.000Z"


def webhook_url() -> str:
    return reverse("autosend_queue:webhook")


def event_for(email: Email, event_type: str, **data: Any) -> dict[str, Any]:
    """A body in the newer ``type``/``createdAt`` shape about ``email``'s first recipient."""
    fields = {"emailId": email.autosend_email_id, "to": {"email": email.to_email}, **data}
    return {"type": event_type, "createdAt": CREATED_AT, "data": fields}


def post(
    client: Client,
    body: dict[str, Any] | list[Any] | bytes,
    *,
    secret: str = SECRET,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """POST ``body`` to the webhook, signed with ``secret`` unless ``headers`` sign it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = {webhooks.SIGNATURE_HEADER: webhooks.sign(raw, secret), **(headers or {})}
    return client.post(webhook_url(), raw, content_type="application/json", headers=signed)


def unsigned_post(client: Client, body: dict[str, Any]) -> HttpResponse:
    return client.post(webhook_url(), body, content_type="application/json")


@pytest.fixture
def email() -> Email:
    return SentEmailFactory(to_email="ada@example.com")


@pytest.fixture
def received_events() -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        received.append(kwargs)

    email_event.connect(receiver)
    yield received
    email_event.disconnect(receiver)


def delivery_status_of(email: Email) -> str:
    email.refresh_from_db()
    return email.delivery_status


# Signatures fail closed.


def test_a_validly_signed_webhook_is_accepted(client, email):
    response = post(client, event_for(email, "email.delivered"))
    assert response.status_code == 200
    assert response.json() == {"outcome": "recorded"}
    assert delivery_status_of(email) == DeliveryStatus.DELIVERED


def test_a_missing_signature_is_refused_and_changes_nothing(client, email):
    response = unsigned_post(client, event_for(email, "email.delivered"))
    assert response.status_code == 401
    assert delivery_status_of(email) == DeliveryStatus.UNKNOWN
    assert not EmailEvent.objects.filter(kind=EmailEvent.Kind.WEBHOOK).exists()


def test_a_signature_made_with_another_secret_is_refused(client, email):
    response = post(client, event_for(email, "email.delivered"), secret="whsec_other")
    assert response.status_code == 401
    assert delivery_status_of(email) == DeliveryStatus.UNKNOWN


def test_a_tampered_body_is_refused(client, email):
    original = json.dumps(event_for(email, "email.delivered")).encode()
    tampered = original.replace(b"delivered", b"bounced")
    signature = webhooks.sign(original, SECRET)
    response = post(client, tampered, headers={webhooks.SIGNATURE_HEADER: signature})
    assert response.status_code == 401
    assert delivery_status_of(email) == DeliveryStatus.UNKNOWN


def test_a_signature_with_the_hmac_sha256_prefix_is_accepted(client, email):
    raw = json.dumps(event_for(email, "email.delivered")).encode()
    prefixed = "hmac-sha256=" + webhooks.sign(raw, SECRET)
    assert post(client, raw, headers={webhooks.SIGNATURE_HEADER: prefixed}).status_code == 200


def test_a_signature_in_uppercase_hex_is_accepted(client, email):
    raw = json.dumps(event_for(email, "email.delivered")).encode()
    upper = webhooks.sign(raw, SECRET).upper()
    assert post(client, raw, headers={webhooks.SIGNATURE_HEADER: upper}).status_code == 200


def test_without_a_configured_secret_every_webhook_is_refused_and_logged(
    client, email, autosend_settings, caplog
):
    autosend_settings(WEBHOOK_SECRET="")
    with caplog.at_level(logging.ERROR, logger="autosend_queue.webhooks"):
        response = post(client, event_for(email, "email.delivered"), secret="")
    assert response.status_code == 401
    assert "WEBHOOK_SECRET'] is not set" in caplog.text
    assert delivery_status_of(email) == DeliveryStatus.UNKNOWN


def test_the_signature_is_checked_before_the_body_is_parsed(client):
    response = post(client, b"not json", headers={webhooks.SIGNATURE_HEADER: "00" * 32})
    assert response.status_code == 401


# The HTTP surface.


def test_only_post_is_allowed(client):
    response = client.get(webhook_url())
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_the_webhook_needs_no_csrf_token(email):
    csrf_client = Client(enforce_csrf_checks=True)
    assert post(csrf_client, event_for(email, "email.delivered")).status_code == 200


def test_a_signed_body_that_is_not_json_is_a_bad_request(client):
    assert post(client, b"{not json").status_code == 400


def test_a_signed_json_body_that_is_not_an_object_is_a_bad_request(client):
    assert post(client, [1, 2, 3]).status_code == 400


def test_a_body_over_the_size_limit_is_refused(client, email, autosend_settings):
    autosend_settings(MAX_BODY_SIZE=100)
    response = post(client, event_for(email, "email.delivered", subject="x" * 200))
    assert response.status_code == 413
    assert delivery_status_of(email) == DeliveryStatus.UNKNOWN


def test_a_body_of_exactly_the_size_limit_is_read(client, email, autosend_settings):
    raw = json.dumps(event_for(email, "email.delivered")).encode()
    autosend_settings(MAX_BODY_SIZE=len(raw))
    assert post(client, raw).status_code == 200


class UnreadableStream:
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")

    def readline(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def test_a_content_length_over_the_limit_is_refused_before_reading(autosend_settings):
    autosend_settings(MAX_BODY_SIZE=100)
    request = RequestFactory().post(
        webhook_url(),
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH="101",
        **{"wsgi.input": UnreadableStream()},
    )
    assert views.webhook(request).status_code == 413


# Both payload shapes.


def test_the_older_event_and_timestamp_shape_is_accepted(client, email):
    body = {
        "event": "email.opened",
        "timestamp": 1762943400000,
        "data": event_for(email, "")["data"],
    }
    assert post(client, body).status_code == 200
    assert delivery_status_of(email) == DeliveryStatus.OPENED


def test_the_event_type_may_come_from_the_header_alone(client, email):
    body = {"data": event_for(email, "")["data"]}
    response = post(client, body, headers={webhooks.EVENT_HEADER: "email.clicked"})
    assert response.status_code == 200
    assert delivery_status_of(email) == DeliveryStatus.CLICKED


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"createdAt": CREATED_AT}, {}),
        ({"timestamp": 1762943400000}, {}),
        ({"timestamp": 1762943400}, {}),
        ({}, {webhooks.TIMESTAMP_HEADER: "1762943400000"}),
        ({}, {webhooks.TIMESTAMP_HEADER: "1762943400"}),
    ],
    ids=["iso", "ms", "seconds", "header-ms", "header-seconds"],
)
def test_the_time_of_the_event_is_read_in_every_form(body, headers):
    event = webhooks.parse_event({"type": "email.sent", **body}, headers)
    assert event.occurred_at == datetime(2025, 11, 12, 10, 30, tzinfo=UTC)


# Delivery status.


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("email.sent", DeliveryStatus.SENT),
        ("email.delivered", DeliveryStatus.DELIVERED),
        ("email.deferred", DeliveryStatus.DEFERRED),
        ("email.bounced", DeliveryStatus.BOUNCED),
        ("email.opened", DeliveryStatus.OPENED),
        ("email.clicked", DeliveryStatus.CLICKED),
        ("email.spam_reported", DeliveryStatus.SPAM_REPORTED),
        ("email.unsubscribed", DeliveryStatus.UNSUBSCRIBED),
        ("email.group_unsubscribed", DeliveryStatus.UNSUBSCRIBED),
    ],
)
def test_each_event_sets_the_delivery_status_of_the_email_and_recipient(
    client, email, event_type, status
):
    post(client, event_for(email, event_type))
    assert delivery_status_of(email) == status
    assert EmailRecipient.objects.get(email=email).delivery_status == status


def test_each_event_is_appended_to_the_log_with_its_normalized_data(client, email):
    post(client, event_for(email, "email.bounced", bounceType="Permanent"))
    event = EmailEvent.objects.get(email=email, kind=EmailEvent.Kind.WEBHOOK)
    assert event.data == {
        "type": "email.bounced",
        "delivery_status": "bounced",
        "email_id": email.autosend_email_id,
        "recipient": "ada@example.com",
        "bounce_type": "Permanent",
        "occurred_at": "2025-11-12T10:30:00+00:00",
    }


@pytest.mark.parametrize(
    ("first", "late", "kept"),
    [
        ("email.opened", "email.delivered", DeliveryStatus.OPENED),
        ("email.delivered", "email.deferred", DeliveryStatus.DELIVERED),
        ("email.clicked", "email.opened", DeliveryStatus.CLICKED),
        ("email.unsubscribed", "email.clicked", DeliveryStatus.UNSUBSCRIBED),
        ("email.spam_reported", "email.unsubscribed", DeliveryStatus.SPAM_REPORTED),
        ("email.bounced", "email.delivered", DeliveryStatus.BOUNCED),
    ],
)
def test_a_late_event_does_not_take_the_status_back(client, email, first, late, kept):
    post(client, event_for(email, first))
    assert post(client, event_for(email, late)).status_code == 200
    assert delivery_status_of(email) == kept
    assert email.events.filter(kind=EmailEvent.Kind.WEBHOOK).count() == 2


def test_a_bounce_after_delivery_wins(client, email):
    post(client, event_for(email, "email.delivered"))
    post(client, event_for(email, "email.bounced", bounceType="Transient"))
    assert delivery_status_of(email) == DeliveryStatus.BOUNCED


def test_an_event_for_a_copied_recipient_sets_that_recipients_status(client, email):
    EmailRecipientFactory(email=email, address="cc@example.com")
    post(client, event_for(email, "email.bounced", to={"email": "CC@example.com"}))
    statuses = dict(EmailRecipient.objects.values_list("address", "delivery_status"))
    assert statuses == {"ada@example.com": "", "cc@example.com": "bounced"}
    assert delivery_status_of(email) == DeliveryStatus.BOUNCED


def test_a_bulk_event_finds_the_chunk_by_batch_id_and_recipient(client):
    chunk = EmailFactory(
        kind=EmailKind.BULK, status=EmailStatus.SENT, autosend_batch_id="batch-1", to_email="a@x.io"
    )
    EmailRecipientFactory(email=chunk, address="b@x.io")
    body = {"type": "email.delivered", "data": {"batchId": "batch-1", "to": {"email": "b@x.io"}}}
    assert post(client, body).json() == {"outcome": "recorded"}
    statuses = dict(EmailRecipient.objects.values_list("address", "delivery_status"))
    assert statuses == {"a@x.io": "", "b@x.io": "delivered"}


def test_an_unknown_email_id_is_acknowledged_and_logged(client, caplog):
    unknown = {"type": "email.delivered", "data": {"emailId": "f" * 24}}
    with caplog.at_level(logging.INFO, logger="autosend_queue.webhooks"):
        response = post(client, unknown)
    assert response.json() == {"outcome": "unknown_email"}
    assert "unknown email" in caplog.text
    assert not EmailEvent.objects.exists()


def test_an_event_type_without_a_status_is_logged_and_changes_no_status(client, email):
    post(client, event_for(email, "email.opened"))
    post(client, event_for(email, "email.group_resubscribed"))
    assert delivery_status_of(email) == DeliveryStatus.OPENED
    assert email.events.filter(data__type="email.group_resubscribed").exists()


# Idempotency by delivery id.


def test_a_repeated_delivery_id_is_acknowledged_and_changes_nothing(client, email, received_events):
    delivery = {webhooks.DELIVERY_ID_HEADER: "dlv_1"}
    post(client, event_for(email, "email.delivered"), headers=delivery)
    response = post(client, event_for(email, "email.delivered"), headers=delivery)
    assert response.status_code == 200
    assert response.json() == {"outcome": "duplicate"}
    assert email.events.filter(kind=EmailEvent.Kind.WEBHOOK).count() == 1
    assert len(received_events) == 1


def test_a_repeated_delivery_id_does_not_apply_a_different_body(client, email):
    delivery = {webhooks.DELIVERY_ID_HEADER: "dlv_1"}
    post(client, event_for(email, "email.delivered"), headers=delivery)
    post(client, event_for(email, "email.bounced"), headers=delivery)
    assert delivery_status_of(email) == DeliveryStatus.DELIVERED


def test_events_without_a_delivery_id_are_each_recorded(client, email):
    post(client, event_for(email, "email.opened"))
    post(client, event_for(email, "email.opened"))
    assert email.events.filter(kind=EmailEvent.Kind.WEBHOOK).count() == 2


# The email_event signal.


def test_the_signal_carries_the_email_and_the_normalized_event(client, email, received_events):
    body = event_for(email, "email.bounced", bounceType="Permanent")
    post(client, body, headers={webhooks.DELIVERY_ID_HEADER: "dlv_9"})
    (received,) = received_events
    assert received["sender"] is Email
    assert received["email"].pk == email.pk
    assert received["email"].delivery_status == DeliveryStatus.BOUNCED
    event = received["event"]
    assert (event.type, event.delivery_status, event.bounce_type) == (
        "email.bounced",
        "bounced",
        "Permanent",
    )
    assert (event.email_id, event.recipient, event.delivery_id) == (
        email.autosend_email_id,
        "ada@example.com",
        "dlv_9",
    )
    assert event.raw == body


# Opt-outs stop the recipient's drips.


def drip_to(address: str, enrollment: Enrollment, **fields: Any) -> Email:
    return QueuedEmailFactory(to_email=address, enrollment=enrollment, **fields)


@pytest.mark.parametrize("event_type", ["email.unsubscribed", "email.spam_reported"])
def test_an_opt_out_cancels_the_recipients_remaining_drips(
    client, email, event_type, django_capture_on_commit_callbacks
):
    enrollment = EnrollmentFactory()
    remaining = [drip_to("ada@example.com", enrollment) for _ in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        post(client, event_for(email, event_type))
    assert {drip.status for drip in Email.objects.filter(enrollment=enrollment)} == {"cancelled"}
    assert sorted(locmem.cancelled) == sorted(drip.qstash_message_id for drip in remaining)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.CANCELLED


def test_an_opt_out_leaves_sent_drips_and_other_recipients_alone(client, email):
    enrollment, other_enrollment = EnrollmentFactory(), EnrollmentFactory()
    already_sent = drip_to("ada@example.com", enrollment, status=EmailStatus.SENT)
    someone_else = drip_to("bob@example.com", other_enrollment)
    post(client, event_for(email, "email.unsubscribed"))
    already_sent.refresh_from_db()
    someone_else.refresh_from_db()
    other_enrollment.refresh_from_db()
    assert (already_sent.status, someone_else.status) == (EmailStatus.SENT, EmailStatus.QUEUED)
    assert other_enrollment.status == Enrollment.Status.ACTIVE


def test_an_opt_out_finds_drips_where_the_address_is_a_copy(client, email):
    drip = QueuedEmailFactory(to_email="someone@example.com", enrollment=EnrollmentFactory())
    EmailRecipientFactory(email=drip, address="ada@example.com")
    post(client, event_for(email, "email.unsubscribed"))
    drip.refresh_from_db()
    assert drip.status == EmailStatus.CANCELLED


def test_an_opt_out_for_an_unknown_email_still_cancels_drips_to_the_address(client):
    drip = drip_to("ada@example.com", EnrollmentFactory())
    body = {"type": "email.unsubscribed", "data": {"to": {"email": "ada@example.com"}}}
    assert post(client, body).json() == {"outcome": "unknown_email"}
    drip.refresh_from_db()
    assert drip.status == EmailStatus.CANCELLED


def test_a_bounce_does_not_cancel_drips(client, email):
    drip = drip_to("ada@example.com", EnrollmentFactory())
    post(client, event_for(email, "email.bounced", bounceType="Permanent"))
    drip.refresh_from_db()
    assert drip.status == EmailStatus.QUEUED


# Cost.


def test_a_webhook_costs_a_constant_number_of_queries(client, email, django_assert_num_queries):
    body = event_for(email, "email.delivered")
    # lookup, savepoint, event insert, two conditional UPDATEs, release
    with django_assert_num_queries(6):
        post(client, body)


@pytest.mark.parametrize("drips", [1, 20])
def test_an_opt_out_costs_the_same_queries_for_any_number_of_drips(
    client, email, drips, django_assert_num_queries
):
    enrollment = EnrollmentFactory()
    for _ in range(drips):
        drip_to("ada@example.com", enrollment)
    # The six of any webhook, the select of the enrollments, then sequences.cancel_enrollments:
    # savepoint, the cancel (savepoint, locking select, status UPDATE, event insert, release),
    # the enrollments UPDATE, release.
    with django_assert_num_queries(15):
        post(client, event_for(email, "email.unsubscribed"))


# Fuzzed, validly signed bodies never answer 500. Characters databases refuse (NUL, lone
# surrogates from JSON escapes) are drawn often on purpose, and most bodies name a known Email,
# so that their strings reach the database.

# st.text never draws lone surrogates, so strings are joined from characters.
tricky_text = st.lists(
    st.sampled_from(["\x00", "\ud800", "a", "@", " "]) | st.characters(), max_size=40
).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
known_ids = st.sampled_from(["known-email", "known-batch", ""])
event_types = st.sampled_from([*webhooks.STATUS_FOR_TYPE, "email.unknown"]) | tricky_text
addresses = st.sampled_from(["fuzz@example.com", "FUZZ@example.com"]) | tricky_text


def or_any_json(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy | json_values


optional_data = {
    "batchId": or_any_json(known_ids),
    "email": or_any_json(addresses),
    "bounceType": json_values,
    "bounce": json_values,
}
addressed_bodies = st.fixed_dictionaries(
    {
        "type": event_types,
        "data": st.fixed_dictionaries(
            {"emailId": st.just("known-email"), "to": st.fixed_dictionaries({"email": addresses})},
            optional=optional_data,
        ),
    }
)
any_shaped_bodies = st.fixed_dictionaries(
    {},
    optional={
        "type": or_any_json(event_types),
        "event": or_any_json(event_types),
        "createdAt": or_any_json(tricky_text),
        "timestamp": or_any_json(st.integers() | st.floats()),
        "data": or_any_json(
            st.fixed_dictionaries(
                {}, optional={"emailId": or_any_json(known_ids), "to": json_values, **optional_data}
            )
        ),
    },
)
raw_bodies = st.one_of(
    addressed_bodies.map(lambda body: json.dumps(body).encode()),
    any_shaped_bodies.map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
)
header_values = st.none() | st.text(st.sampled_from("\x00-a"), min_size=1, max_size=8)
header_values |= st.text(st.characters(codec="latin-1"), max_size=300)


@pytest.fixture
def rows_the_fuzz_can_reach() -> None:
    """A single send, a bulk chunk and a drip the fuzzed bodies name; made once per test."""
    SentEmailFactory(autosend_email_id="known-email", to_email="fuzz@example.com")
    chunk = EmailFactory(kind=EmailKind.BULK, autosend_batch_id="known-batch")
    EmailRecipientFactory(email=chunk, address="fuzz@example.com")
    drip_to("fuzz@example.com", EnrollmentFactory())


@pytest.mark.usefixtures("rows_the_fuzz_can_reach")
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=raw_bodies, delivery_id=header_values, timestamp=header_values)
def test_a_validly_signed_fuzzed_body_never_answers_500(client, raw, delivery_id, timestamp):
    headers = {
        name: value
        for name, value in (
            (webhooks.DELIVERY_ID_HEADER, delivery_id),
            (webhooks.TIMESTAMP_HEADER, timestamp),
        )
        if value is not None
    }
    response = post(client, raw, headers=headers)
    assert response.status_code in (200, 400)
