"""Nobody outside the staff can act on Emails, whatever they send to the admin's URLs."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from autosend_queue.models import Email, EmailEvent
from tests.factories import EmailFactory, QueuedEmailFactory, UserFactory

pytestmark = pytest.mark.django_db

ACTIONS = ["resend_selected", "cancel_selected", "publish_selected"]


def snapshot() -> tuple[list[Any], list[Any]]:
    emails = list(Email.objects.order_by("id").values_list("id", "status", "qstash_message_id"))
    events = list(EmailEvent.objects.order_by("id").values_list("id", "kind"))
    return emails, events


def requests_to_every_action_url() -> list[Any]:
    """(method, url builder, data builder) for each action, confirmed or not, and the button."""
    changelist = reverse("admin:autosend_queue_email_changelist")
    cases = []
    for action in ACTIONS:
        for confirmed in (False, True):
            cases.append(
                pytest.param(
                    changelist,
                    {"action": action, "post": "yes"} if confirmed else {"action": action},
                    id=f"{action}{'-confirmed' if confirmed else ''}",
                )
            )
    cases.append(pytest.param("resend-button", {}, id="resend-button"))
    return cases


def url_for(target: str, email: Email) -> str:
    if target == "resend-button":
        return reverse("admin:autosend_queue_email_resend", args=[email.pk])
    return target


@pytest.fixture
def emails() -> list[Email]:
    return [EmailFactory(), QueuedEmailFactory()]


@pytest.fixture(params=["anonymous", "not-staff"])
def outsider(request: pytest.FixtureRequest) -> Client:
    client = Client()
    if request.param == "not-staff":
        client.force_login(UserFactory(is_staff=False, is_superuser=True))
    return client


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(("target", "data"), requests_to_every_action_url())
def test_an_outsider_is_sent_to_the_login_page_and_nothing_changes(
    outsider, emails, method, target, data
):
    before = snapshot()
    url = url_for(target, emails[0])
    response = getattr(outsider, method)(
        url, {**data, "_selected_action": [email.pk for email in emails]}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert snapshot() == before


@pytest.mark.parametrize(("target", "data"), requests_to_every_action_url())
def test_a_post_without_the_csrf_token_is_refused_even_for_a_superuser(
    admin_user, emails, target, data
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    before = snapshot()
    response = client.post(
        url_for(target, emails[0]), {**data, "_selected_action": [email.pk for email in emails]}
    )
    assert response.status_code == 403
    assert snapshot() == before
