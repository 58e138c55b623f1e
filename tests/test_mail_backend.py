"""``autosend_queue.mail.EmailBackend``: django.core.mail sends become Emails in the outbox."""

from __future__ import annotations

import logging

import django
import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives

from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailKind, EmailRecipient
from autosend_queue.transports import locmem

pytestmark = pytest.mark.django_db

BACKEND = "autosend_queue.mail.EmailBackend"


@pytest.fixture(autouse=True)
def _autosend_backend(settings):
    settings.EMAIL_BACKEND = BACKEND
    settings.DEFAULT_FROM_EMAIL = "Site <site@example.com>"


def message(**fields) -> EmailMessage:
    defaults = {"subject": "Hello", "body": "Hi there", "to": ["ada@example.com"]}
    return EmailMessage(**{**defaults, **fields})


def send(*messages: EmailMessage, fail_silently: bool = False) -> int:
    return mail.get_connection(fail_silently=fail_silently).send_messages(list(messages))


def test_send_mail_writes_one_single_email_with_the_text_body():
    mail.send_mail("Hello", "Hi there", None, ["ada@example.com"])
    email = Email.objects.get()
    assert email.kind == EmailKind.SINGLE
    assert email.payload == {
        "to": {"email": "ada@example.com"},
        "from": {"email": "site@example.com", "name": "Site"},
        "subject": "Hello",
        "text": "Hi there",
    }


def test_send_mail_returns_the_number_of_messages_sent():
    assert mail.send_mail("Hello", "Hi", None, ["ada@example.com", "bob@example.com"]) == 1


def test_send_messages_returns_the_number_of_messages_not_of_emails():
    assert send(message(to=["a@example.com", "b@example.com"]), message()) == 2
    assert Email.objects.count() == 3


def test_an_html_alternative_becomes_the_html_of_the_body():
    multi = EmailMultiAlternatives("Hello", "Hi there", to=["ada@example.com"])
    multi.attach_alternative("<p>Hi there</p>", "text/html")
    send(multi)
    payload = Email.objects.get().payload
    assert (payload["text"], payload["html"]) == ("Hi there", "<p>Hi there</p>")


def test_a_message_with_html_content_subtype_sends_html_only():
    html_message = message(body="<p>Hi</p>")
    html_message.content_subtype = "html"
    send(html_message)
    payload = Email.objects.get().payload
    assert payload["html"] == "<p>Hi</p>"
    assert "text" not in payload


def test_a_from_email_with_a_name_maps_to_autosends_from():
    send(message(from_email="Ada Lovelace <ada@lovelace.example>"))
    assert Email.objects.get().payload["from"] == {
        "email": "ada@lovelace.example",
        "name": "Ada Lovelace",
    }


def test_each_to_address_gets_its_own_send():
    send(message(to=["Ada <ada@example.com>", "bob@example.com"]))
    tos = [email.payload["to"] for email in Email.objects.order_by("id")]
    assert tos == [{"email": "ada@example.com", "name": "Ada"}, {"email": "bob@example.com"}]


def test_cc_and_bcc_ride_on_the_first_send_only():
    send(message(to=["a@example.com", "b@example.com"], cc=["c@x.example"], bcc=["d@x.example"]))
    first, second = Email.objects.order_by("id")
    assert (first.payload["cc"], first.payload["bcc"]) == (
        [{"email": "c@x.example"}],
        [{"email": "d@x.example"}],
    )
    assert "cc" not in second.payload
    assert "bcc" not in second.payload


def test_every_address_is_searchable_as_a_recipient():
    send(message(to=["a@example.com", "b@example.com"], cc=["c@example.com"]))
    assert sorted(EmailRecipient.objects.values_list("address", flat=True)) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]


def test_reply_to_becomes_reply_to():
    send(message(reply_to=["Help <help@example.com>"]))
    assert Email.objects.get().payload["replyTo"] == {"email": "help@example.com", "name": "Help"}


def test_a_reply_to_header_becomes_reply_to():
    send(message(headers={"Reply-To": "help@example.com"}))
    assert Email.objects.get().payload["replyTo"] == {"email": "help@example.com"}


def test_several_reply_to_addresses_are_refused():
    with pytest.raises(InvalidPayload) as error:
        send(message(reply_to=["a@example.com", "b@example.com"]))
    assert (error.value.field, error.value.rule) == ("reply_to", "unsupported")


def test_attachments_are_refused_naming_the_part():
    with_attachment = message()
    with_attachment.attach("report.csv", "a,b\n", "text/csv")
    with pytest.raises(InvalidPayload) as error:
        send(with_attachment)
    assert (error.value.field, error.value.rule) == ("attachments", "unsupported")
    assert not Email.objects.exists()


def test_custom_headers_are_refused_naming_them():
    with pytest.raises(InvalidPayload, match="X-Campaign") as error:
        send(message(headers={"X-Campaign": "spring"}))
    assert error.value.field == "extra_headers"


def test_a_non_html_alternative_is_refused():
    multi = EmailMultiAlternatives("Hello", "Hi", to=["ada@example.com"])
    multi.attach_alternative("BEGIN:VCALENDAR", "text/calendar")
    with pytest.raises(InvalidPayload) as error:
        send(multi)
    assert error.value.field == "alternatives"


def test_drop_unsupported_sends_without_the_parts_and_warns(autosend_settings, caplog):
    autosend_settings(DROP_UNSUPPORTED=True)
    with_extras = message(headers={"X-Campaign": "spring"})
    with_extras.attach("report.csv", "a,b\n", "text/csv")
    with caplog.at_level(logging.WARNING, logger="autosend_queue.mail"):
        assert send(with_extras) == 1
    assert Email.objects.get().payload["text"] == "Hi there"
    assert "dropped attachments" in caplog.text
    assert "dropped extra_headers: header(s) X-Campaign" in caplog.text


def test_a_message_without_recipients_is_not_sent_nor_counted():
    assert send(message(to=[])) == 0
    assert not Email.objects.exists()


def test_a_message_with_only_bcc_is_refused_for_want_of_a_to():
    with pytest.raises(InvalidPayload) as error:
        send(message(to=[], bcc=["hidden@example.com"]))
    assert (error.value.field, error.value.rule) == ("to", "required")


def test_an_invalid_address_is_named_by_its_position():
    with pytest.raises(InvalidPayload) as error:
        send(message(to=["ok@example.com", "not an address"]))
    assert (error.value.field, error.value.rule) == ("to[1]", "invalid_address")


def test_one_invalid_message_writes_nothing_of_the_call():
    with pytest.raises(InvalidPayload):
        send(message(), message(to=["not an address"]), message())
    assert not Email.objects.exists()


def test_fail_silently_writes_the_valid_messages_and_counts_them():
    assert send(message(), message(to=["not an address"]), message(), fail_silently=True) == 2
    assert Email.objects.count() == 2


def test_the_whole_call_is_published_in_one_transport_call(
    mocker_transport_calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        send(message(to=["a@example.com", "b@example.com"]), message())
    assert mocker_transport_calls == [3]
    assert len(locmem.outbox) == 3


# SQLite allows 999 variables a query, so bulk inserts of more than 38 Emails split in batches
# there; PostgreSQL takes 100 in one insert.
@pytest.mark.parametrize(
    "count", [1, 30, pytest.param(100, marks=pytest.mark.postgres, id="100-postgres")]
)
def test_send_messages_costs_the_same_queries_for_any_number_of_messages(
    count, django_assert_num_queries
):
    messages = [message(to=[f"r{index}@example.com"]) for index in range(count)]
    with django_assert_num_queries(5):  # savepoint, 3 bulk inserts, release
        assert send(*messages) == count


@pytest.mark.skipif(django.VERSION < (6, 1), reason="MAILERS arrived in Django 6.1")
def test_it_works_as_a_django_6_1_mailer():
    from django.test import override_settings

    with override_settings(MAILERS={"default": {"BACKEND": "autosend_queue.mail.EmailBackend"}}):
        mail.send_mail("Hi", "Hello", "team@example.com", ["ada@example.com"])
    assert Email.objects.get().payload["to"] == {"email": "ada@example.com"}
