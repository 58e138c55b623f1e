"""``autosend_sendtest`` with the locmem transport (the devserver run is in tests/e2e)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from autosend_queue.models import Email

pytestmark = pytest.mark.django_db(transaction=True)


def test_without_waiting_a_queued_email_is_success():
    out = StringIO()
    call_command("autosend_sendtest", "--to", "ops@example.com", "--wait", "0", stdout=out)
    email = Email.objects.get()
    assert f"Email {email.uuid}: queued" in out.getvalue()
    assert "QStash message: locmem-" in out.getvalue()


def test_an_email_that_never_settles_is_reported_as_an_error():
    with pytest.raises(CommandError, match="queued"):
        call_command(
            "autosend_sendtest", "--to", "ops@example.com", "--wait", "0.3", stdout=StringIO()
        )


def test_an_invalid_address_names_the_field():
    with pytest.raises(CommandError, match=r"to\[0\]: 'nope' is not a valid email address"):
        call_command("autosend_sendtest", "--to", "nope", stdout=StringIO())
    assert not Email.objects.exists()
