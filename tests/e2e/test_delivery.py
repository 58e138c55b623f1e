"""Emails over real HTTP: the SDK, the devserver, AutoSend's sandbox and the app's callbacks."""

from __future__ import annotations

import socket
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from autosend_queue import cancel, send_email
from autosend_queue.models import DeliveryStatus, Email, EmailEvent, EmailStatus
from tests.e2e.conftest import E2E_API_KEY, wait_for, wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def welcome(**fields) -> Email:
    return send_email("Ada <ada@example.com>", subject="Welcome", html="<p>Hi</p>", **fields)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_email_is_sent_with_autosends_id(dev):
    email = wait_for_status(welcome(), EmailStatus.SENT)
    (received,) = dev.sandbox.emails
    assert received.payload == email.payload
    assert received.api_key == E2E_API_KEY
    assert email.autosend_email_id == received.id
    assert email.sent_at is not None


def test_a_500_from_autosend_gives_retrying_then_sent(dev):
    dev.sandbox.fail_next(1)
    email = wait_for_status(welcome(), EmailStatus.SENT)
    attempts = email.events.filter(kind=EmailEvent.Kind.ATTEMPT).order_by("id")
    assert [event.data["status_code"] for event in attempts] == [500, 200]
    assert email.attempts == 2


def test_exhausted_retries_give_failed_with_the_dlq_id(dev, autosend_settings):
    autosend_settings(RETRIES=1)
    dev.sandbox.fail_next(10)
    email = wait_for_status(welcome(), EmailStatus.FAILED)
    wait_for(lambda: bool(Email.objects.get(pk=email.pk).dlq_id), what="the dlqId")
    email.refresh_from_db()
    assert email.dlq_id == dev.dlq[0].dlq_id
    assert dev.sandbox.emails == []


def test_a_cancel_before_delivery_prevents_the_send(dev):
    email = welcome(delay=timedelta(minutes=5))
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED
    cancel(email)
    wait_for(lambda: dev.messages == [], what="QStash to drop the message")
    assert dev.release(email.qstash_message_id) is False
    email.refresh_from_db()
    assert email.status == EmailStatus.CANCELLED
    assert dev.sandbox.emails == []


def test_a_delayed_email_waits_until_released(dev):
    email = welcome(delay=timedelta(minutes=5))
    email.refresh_from_db()
    assert dev.sandbox.emails == []
    assert dev.release(email.qstash_message_id) is True
    wait_for_status(email, EmailStatus.SENT)


def test_qstash_down_gives_pending_then_flush_sends_exactly_once(dev, autosend_settings):
    autosend_settings(QSTASH_URL=f"http://127.0.0.1:{closed_port()}")
    email = welcome()
    email.refresh_from_db()
    assert email.status == EmailStatus.PENDING
    autosend_settings(QSTASH_URL=dev.qstash_url)
    call_command("autosend_flush", stdout=StringIO())
    call_command("autosend_flush", stdout=StringIO())
    wait_for_status(email, EmailStatus.SENT)
    assert dev.wait_idle(10)
    assert len(dev.sandbox.emails) == 1


def test_autosends_webhooks_mark_the_email_delivered(dev):
    email = wait_for_status(welcome(), EmailStatus.SENT)

    def delivered() -> bool:
        email.refresh_from_db()
        return email.delivery_status == DeliveryStatus.DELIVERED

    wait_for(delivered, what="the email.delivered webhook")
    webhooks = email.events.filter(kind=EmailEvent.Kind.WEBHOOK).order_by("id")
    assert [event.data["type"] for event in webhooks] == ["email.sent", "email.delivered"]


def test_sendtest_reports_a_sent_email(dev):
    out = StringIO()
    call_command("autosend_sendtest", "--to", "ops@example.com", "--wait", "15", stdout=out)
    assert ": sent" in out.getvalue()
    assert "AutoSend email id: " in out.getvalue()
