"""The Email admin in a real browser: what staff are offered, and a resend from start to end."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from autosend_queue.models import DeliveryStatus, Email, EmailEvent, EmailKind, EmailStatus
from tests.browser.conftest import REPOSITORY
from tests.factories import (
    EmailEventFactory,
    EmailFactory,
    QueuedEmailFactory,
    SequenceStepFactory,
    StaffUserFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "password"  # UserFactory's
README_SCREENSHOT = REPOSITORY / "docs" / "screenshots" / "admin-history.png"


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("Log out")


def a_history_worth_looking_at() -> Email:
    """A few weeks of mail as a project would have it; returns the failed welcome email."""
    welcome = SequenceStepFactory(sequence__name="Onboarding", position=1, subject="Welcome")
    tips = SequenceStepFactory(sequence=welcome.sequence, position=2, subject="Three tips")
    now = timezone.now()
    EmailFactory(
        to_email="grace@example.com",
        subject="Your invoice for March",
        status="sent",
        sent_at=now,
        attempts=1,
        delivery_status=DeliveryStatus.OPENED,
    )
    EmailFactory(
        kind=EmailKind.BULK,
        to_email="list-1@example.com",
        recipient_count=100,
        subject="",
        template_id="A-newsletter",
        status="sent",
        sent_at=now,
        attempts=1,
        delivery_status=DeliveryStatus.DELIVERED,
    )
    QueuedEmailFactory(
        to_email="alan@example.com",
        subject=tips.subject,
        sequence=tips.sequence,
        sequence_step=tips,
        scheduled_at=now + timedelta(days=2),
    )
    EmailFactory(
        to_email="linus@example.com",
        subject="Reset your password",
        status=EmailStatus.RETRYING,
        attempts=2,
    )
    EmailFactory(to_email="ken@example.com", subject="Trial ending", status="cancelled")
    failed = EmailFactory(
        to_email="ada@example.com",
        subject=welcome.subject,
        sequence=welcome.sequence,
        sequence_step=welcome,
        status="failed",
        attempts=3,
        last_error="AutoSend answered 422: domain not verified",
    )
    for kind, data in [
        (EmailEvent.Kind.CREATED, {"scheduled_at": now.isoformat()}),
        (EmailEvent.Kind.PUBLISHED, {"message_id": "msg_7Hx2", "deduplicated": False}),
        (EmailEvent.Kind.ATTEMPT, {"status": 422, "error": "domain not verified"}),
        (EmailEvent.Kind.FAILED, {"error": "retries exhausted"}),
    ]:
        EmailEventFactory(email=failed, kind=kind, data=data)
    return failed


def test_staff_without_the_resend_permission_is_not_offered_it_and_a_forged_post_fails(
    page: Page, live_server
):
    email = EmailFactory(status=EmailStatus.FAILED)
    staff = StaffUserFactory(permissions=["view_email", "cancel_email"])
    log_in(page, live_server.url, staff.username)

    page.goto(f"{live_server.url}/admin/autosend_queue/email/")
    options = page.locator("select[name=action] option").evaluate_all(
        "options => options.map(option => option.value)"
    )
    assert "resend_selected" not in options
    assert "cancel_selected" in options
    page.goto(f"{live_server.url}/admin/autosend_queue/email/{email.pk}/change/")
    expect(page.get_by_role("button", name="Resend")).to_have_count(0)

    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
            const body = new URLSearchParams({csrfmiddlewaretoken: token});
            const response = await fetch(url, {method: "POST", body, redirect: "manual"});
            return response.status;
        }""",
        f"/admin/autosend_queue/email/{email.pk}/resend/",
    )
    assert status == 403
    assert not Email.objects.filter(resent_from=email).exists()


def test_a_superuser_finds_a_failed_email_reads_its_timeline_and_resends_it(
    page: Page, live_server, screenshots: Path
):
    failed = a_history_worth_looking_at()
    UserFactory(username="admin", is_staff=True, is_superuser=True)
    log_in(page, live_server.url, "admin")

    page.goto(f"{live_server.url}/admin/autosend_queue/email/")
    page.screenshot(path=screenshots / "admin-changelist.png", full_page=True)
    if os.environ.get("UPDATE_README_SCREENSHOT"):
        shutil.copyfile(screenshots / "admin-changelist.png", README_SCREENSHOT)

    page.locator('details[data-filter-title="status"]').get_by_role("link", name="failed").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name="ada@example.com").click()

    timeline = page.locator(".inline-group")
    for step in ("created", "published to QStash", "delivery attempt", "retries exhausted"):
        expect(timeline).to_contain_text(step)
    page.screenshot(path=screenshots / "admin-change-page.png", full_page=True)

    page.get_by_role("button", name="Resend").click()
    expect(page.locator(".messagelist")).to_contain_text("Resent as a new email")
    expect(page.locator(".field-status_badge")).to_contain_text("queued")
    expect(page.locator(".field-resend_chain")).to_contain_text(str(failed.uuid))
