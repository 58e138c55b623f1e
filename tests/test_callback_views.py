"""The callback endpoints over HTTP: verification first, bounded bodies, clear refusals."""

from __future__ import annotations

import base64
import io
import json
import logging
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autosend_queue import views
from autosend_queue.models import EmailEvent, EmailStatus
from autosend_queue.transports.base import build_message
from tests.factories import EmailFactory, QueuedEmailFactory
from tests.signing import (
    CURRENT_KEY,
    NEXT_KEY,
    OMIT,
    callback_document,
    callback_url,
    failure_document,
    post_signed,
    qstash_signature,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("qstash_signing_keys")]

OTHER_KEY = "sig_an0therKeyTheAttackerChose0000"


@pytest.fixture
def email():
    return QueuedEmailFactory()


def post_raw(client: Client, email, raw: bytes, token: str | None, **headers: str):
    if token is not None:
        headers["Upstash-Signature"] = token
    path = callback_url(email).removeprefix("https://app.example.com")
    return client.post(path, raw, content_type="application/json", headers=headers)


# Accepted callbacks


def test_a_signed_callback_updates_the_email(client, email):
    response = post_signed(client, email, callback_document(status=200))
    email.refresh_from_db()
    assert (response.status_code, response.json()) == (200, {"outcome": "applied"})
    assert email.status == EmailStatus.SENT


def test_a_signed_failure_callback_marks_the_email_failed(client, email):
    response = post_signed(client, email, failure_document(dlq_id="dlq_9"), failure=True)
    email.refresh_from_db()
    assert response.status_code == 200
    assert (email.status, email.dlq_id) == (EmailStatus.FAILED, "dlq_9")


@pytest.mark.parametrize("failure", [False, True], ids=["callback", "failure-callback"])
def test_the_urls_published_to_qstash_are_the_ones_accepted_here(email, failure):
    published = build_message(email)["failure_callback" if failure else "callback"]
    assert published == callback_url(email, failure=failure)


def test_the_endpoint_is_exempt_from_csrf(email):
    response = post_signed(Client(enforce_csrf_checks=True), email, callback_document())
    assert response.status_code == 200


def test_a_callback_for_an_unknown_email_is_acknowledged_and_logged(client, caplog):
    orphan = EmailFactory.build()
    with caplog.at_level(logging.WARNING, logger="autosend_queue"):
        response = post_signed(client, orphan, callback_document())
    assert (response.status_code, response.json()) == (200, {"outcome": "unknown_email"})
    assert str(orphan.uuid) in caplog.text


def test_a_duplicate_callback_answers_200_so_qstash_stops(client, email):
    post_signed(client, email, callback_document(status=200))
    response = post_signed(client, email, callback_document(status=200))
    assert (response.status_code, response.json()) == (200, {"outcome": "ignored"})


# Refused before verification


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_only_post_is_allowed(client, email, method):
    response = getattr(client, method)(callback_url(email).removeprefix("https://app.example.com"))
    assert (response.status_code, response["Allow"]) == (405, "POST")


class CountingStream(io.BytesIO):
    """A request body that records how many bytes the view read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def asgi_request(email, body: CountingStream, content_length: str | None) -> ASGIRequest:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length.encode()))
    path = callback_url(email).removeprefix("https://app.example.com")
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    return ASGIRequest(scope, body)


def test_a_declared_length_over_the_limit_answers_413_before_reading(autosend_settings, email):
    autosend_settings(MAX_BODY_SIZE=1000)
    body = CountingStream(b"x" * 5000)
    response = views.callback(asgi_request(email, body, "5000"), email_uuid=email.uuid)
    assert (response.status_code, body.bytes_read) == (413, 0)


def test_a_body_longer_than_declared_is_read_to_the_limit_plus_one_and_refused(
    autosend_settings, email
):
    autosend_settings(MAX_BODY_SIZE=1000)
    body = CountingStream(b"x" * 5000)
    response = views.callback(asgi_request(email, body, None), email_uuid=email.uuid)
    assert (response.status_code, body.bytes_read) == (413, 1001)


def test_a_body_at_the_limit_is_accepted(client, autosend_settings, email):
    autosend_settings(MAX_BODY_SIZE=2000)
    document = callback_document(padding="")
    document["padding"] = "x" * (2000 - len(json.dumps(document)))
    assert post_signed(client, email, document).status_code == 200


def test_the_default_limit_is_one_megabyte(client, email):
    raw = json.dumps(callback_document(padding="x" * 1024 * 1024)).encode()
    assert post_raw(client, email, raw, qstash_signature(raw, callback_url(email))).status_code == (
        413
    )


def test_a_content_length_that_is_not_a_number_answers_400(email):
    body = CountingStream(b"{}")
    response = views.callback(asgi_request(email, body, "ten"), email_uuid=email.uuid)
    assert response.status_code == 400


# Refused by verification


SIGNATURE_FAILURES = {
    "wrong-key": ("signature", lambda raw, url: qstash_signature(raw, url, key=OTHER_KEY)),
    "expired": ("expired", lambda raw, url: qstash_signature(raw, url, issued_at=0)),
    "not-yet-valid": (
        "not_yet_valid",
        lambda raw, url: qstash_signature(raw, url, issued_at=4_000_000_000),
    ),
    "wrong-issuer": ("issuer", lambda raw, url: qstash_signature(raw, url, iss="Mallory")),
    "wrong-subject": (
        "subject",
        lambda raw, url: qstash_signature(raw, url.replace("/callback/", "/callback/x")),
    ),
    "tampered-body": ("body", lambda raw, url: qstash_signature(raw + b" ", url)),
    "no-body-claim": ("missing_claim", lambda raw, url: qstash_signature(raw, url, body=OMIT)),
    "alg-none": ("algorithm", lambda raw, url: qstash_signature(raw, url, algorithm="none")),
    "not-a-jwt": ("malformed", lambda raw, url: "Bearer hello"),
    "missing-header": ("missing_header", lambda raw, url: None),
}


@pytest.mark.parametrize("failure", SIGNATURE_FAILURES, ids=str)
def test_a_bad_signature_answers_401_logs_the_check_and_changes_nothing(
    client, email, caplog, failure
):
    check, sign = SIGNATURE_FAILURES[failure]
    raw = json.dumps(callback_document(status=200)).encode()
    token = sign(raw, callback_url(email))
    with caplog.at_level(logging.WARNING, logger="autosend_queue"):
        response = post_raw(client, email, raw, token)
    email.refresh_from_db()
    assert response.status_code == 401
    assert f"check {check!r} failed" in caplog.text
    assert (email.status, email.attempts) == (EmailStatus.QUEUED, 0)
    assert not EmailEvent.objects.exists()


def test_the_log_line_names_neither_a_key_nor_the_token(client, email, caplog):
    raw = json.dumps(callback_document()).encode()
    token = qstash_signature(raw, callback_url(email), key=OTHER_KEY)
    with caplog.at_level(logging.DEBUG):
        post_raw(client, email, raw, token)
    assert caplog.text
    for secret in [CURRENT_KEY, NEXT_KEY, OTHER_KEY, *token.split(".")]:
        assert secret not in caplog.text


def test_a_token_signed_with_the_next_key_is_accepted(client, email):
    assert post_signed(client, email, callback_document(), key=NEXT_KEY).status_code == 200


def test_the_host_header_cannot_change_the_url_that_must_have_been_signed(client, email):
    raw = json.dumps(callback_document()).encode()
    path = callback_url(email).removeprefix("https://app.example.com")
    token = qstash_signature(raw, f"https://evil.example{path}")
    response = post_raw(client, email, raw, token, Host="evil.example")
    assert response.status_code == 401


def test_the_signed_url_is_built_from_public_url_whatever_the_host(client, email):
    raw = json.dumps(callback_document()).encode()
    token = qstash_signature(raw, callback_url(email))
    response = post_raw(client, email, raw, token, Host="internal-pod:8000")
    assert response.status_code == 200


def test_a_token_for_the_attempt_endpoint_is_refused_on_the_failure_endpoint(client, email):
    raw = json.dumps(failure_document()).encode()
    token = qstash_signature(raw, callback_url(email, failure=False))
    path = callback_url(email, failure=True).removeprefix("https://app.example.com")
    response = client.post(
        path, raw, content_type="application/json", headers={"Upstash-Signature": token}
    )
    assert response.status_code == 401


# Refused after verification


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b'{"status": 200, "retried": 0, "maxRetries": 3, "header": NaN}',
        b"[" * 100_000,
        b"\xff\xfe{",
    ],
    ids=["text", "array", "string", "nan", "deeply-nested", "bad-encoding"],
)
def test_a_signed_body_that_is_not_a_json_object_answers_400(client, email, raw):
    assert post_raw(client, email, raw, qstash_signature(raw, callback_url(email))).status_code == (
        400
    )


def test_a_signed_body_with_a_bad_field_answers_400_naming_the_field_and_rule(client, email):
    response = post_signed(client, email, callback_document(retried="twice"))
    assert response.status_code == 400
    assert (response.json()["field"], response.json()["rule"]) == ("retried", "type")


# Cost


@pytest.mark.parametrize(
    ("document", "failure"),
    [
        (callback_document(status=200), False),
        (callback_document(status=500, retried=0), False),
        (failure_document(), True),
    ],
    ids=["sent", "retrying", "failure"],
)
def test_a_callback_costs_the_same_few_queries_the_first_time_and_when_repeated(
    client, email, django_assert_num_queries, document, failure
):
    for _ in range(2):
        # savepoint, SELECT ... FOR UPDATE, one UPDATE, the event INSERT, release
        with django_assert_num_queries(5):
            assert post_signed(client, email, document, failure=failure).status_code == 200


# Fuzz

# Text with what databases choke on: NUL (PostgreSQL), lone surrogates (UTF-8 encoders).
nasty_text = st.text(st.sampled_from(["\x00", "\ud800", "\udfff", "\\", '"']) | st.characters())
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | nasty_text
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
answers = st.one_of(
    st.binary(max_size=300),
    nasty_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda value: json.dumps(value).encode(),
        st.fixed_dictionaries(
            {},
            optional={
                "success": json_values,
                "data": st.fixed_dictionaries(
                    {}, optional={"emailId": json_values, "batchId": json_values}
                )
                | json_values,
                "error": st.fixed_dictionaries(
                    {}, optional={"message": json_values, "code": json_values}
                )
                | json_values,
                "message": json_values,
            },
        ),
    ),
)


def mostly(
    valid: st.SearchStrategy, anything: st.SearchStrategy = json_values
) -> st.SearchStrategy:
    """Usually a value QStash could send (so the fuzz reaches the state machine), else anything."""
    return st.one_of(valid, valid, valid, anything)


def whole_numbers(low: int, high: int) -> st.SearchStrategy:
    return mostly(
        st.integers(low, high) | st.integers(low, high).map(str), st.integers() | json_values
    )


fields = st.fixed_dictionaries(
    {
        "status": whole_numbers(100, 599),
        "retried": whole_numbers(0, 5),
        "maxRetries": whole_numbers(0, 5),
        "body": mostly(answers.map(lambda raw: base64.b64encode(raw).decode())),
    },
    optional={
        "createdAt": whole_numbers(0, 2**45),
        "sourceMessageId": mostly(nasty_text),
        "dlqId": mostly(nasty_text),
        "header": json_values,
        "sourceHeader": json_values,
    },
)


def hazard(**fields: Any) -> bytes:
    """A callback body with one known hazard in it, always tried by the fuzz."""
    return json.dumps(callback_document(**{"status": 500, "answer": b"", **fields})).encode()


bodies = st.one_of(fields.map(lambda document: json.dumps(document).encode()), st.binary())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=bodies, failure=st.booleans())
@example(raw=hazard(answer=b"NUL \x00 in the answer"), failure=False)
@example(raw=hazard(answer=b'{"error": {"message": "\\ud800\\u0000", "code": 7}}'), failure=False)
@example(raw=hazard(answer=b'{"data": {"emailId": "\\udfff\\u0000"}}', status=200), failure=False)
@example(raw=hazard(sourceMessageId="\x00\ud800", dlqId="\udfff\x00"), failure=True)
@example(raw=hazard(retried=10**30, maxRetries="9" * 5000), failure=False)
def test_a_signed_body_of_any_shape_never_causes_a_server_error(client, raw, failure):
    url = callback_url(QueuedEmailFactory(), failure=failure)
    response = client.post(
        url.removeprefix("https://app.example.com"),
        raw,
        content_type="application/json",
        headers={"Upstash-Signature": qstash_signature(raw, url)},
    )
    assert response.status_code in (200, 400)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(max_size=400), content_type=st.text(max_size=40))
def test_any_signature_header_is_refused_with_401_never_a_server_error(
    client, email, token, content_type
):
    raw = json.dumps(callback_document()).encode()
    path = callback_url(email).removeprefix("https://app.example.com")
    response = client.post(
        path, raw, content_type=content_type, headers={"Upstash-Signature": token}
    )
    assert response.status_code == 401
