"""Django's own password-reset flow, end to end, with the AutoSend EmailBackend."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from django.urls import reverse

from autosend_queue.models import Email
from autosend_queue.transports import locmem
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("_reset_urls_and_backend"),
]

RESET_LINK = re.compile(r"https?://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)")


@pytest.fixture
def _reset_urls_and_backend():
    with override_settings(
        ROOT_URLCONF="tests.password_urls",
        EMAIL_BACKEND="autosend_queue.mail.EmailBackend",
        DEFAULT_FROM_EMAIL="Site <site@example.com>",
    ):
        yield


def request_reset(client, django_capture_on_commit_callbacks, address: str) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("password_reset"), {"email": address})
    assert response.status_code == 302


def test_a_reset_request_queues_one_email_with_the_link(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="ada@example.com")
    request_reset(client, django_capture_on_commit_callbacks, "ada@example.com")
    email = Email.objects.get()
    assert email.to_email == user.email
    assert RESET_LINK.search(email.payload["text"])
    (published,) = locmem.outbox
    assert published.email_uuid == str(email.uuid)
    assert published.message["body"] == email.payload


def test_the_link_from_the_email_sets_a_new_password(client, django_capture_on_commit_callbacks):
    user = UserFactory(email="ada@example.com")
    request_reset(client, django_capture_on_commit_callbacks, "ada@example.com")
    link = RESET_LINK.search(Email.objects.get().payload["text"])
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a new long passphrase", "new_password2": "a new long passphrase"},
    )
    assert response.status_code == 302
    assert response.url == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password("a new long passphrase")


def test_an_unknown_address_queues_nothing(client, django_capture_on_commit_callbacks):
    request_reset(client, django_capture_on_commit_callbacks, "nobody@example.com")
    assert not Email.objects.exists()
