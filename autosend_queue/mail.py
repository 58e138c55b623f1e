"""``EMAIL_BACKEND = "autosend_queue.mail.EmailBackend"``: Django's mail through the outbox.

Each ``EmailMessage`` becomes one Email (one ``POST /mails/send``) per ``to`` address, because
AutoSend's send takes a single ``to``. ``cc`` and ``bcc`` ride on the first of those sends only,
so a copied person receives one copy, not one per ``to`` address. A whole ``send_messages`` call
is validated first and then written with one ``outbox.create_emails`` call.

Parts AutoSend's API does not take for certain (attachments, custom headers, several reply-to
addresses, non-HTML alternatives) raise ``InvalidPayload`` naming the part, unless
``AUTOSEND_QUEUE["DROP_UNSUPPORTED"]`` is true: then they are dropped with a warning in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils import timezone

from autosend_queue import outbox, payloads
from autosend_queue.conf import app_settings
from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailKind

logger = logging.getLogger(__name__)

HTML = "text/html"
PLAIN = "text/plain"


class EmailBackend(BaseEmailBackend):
    """Queue ``django.core.mail`` messages as Emails; return how many messages were queued."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        bodies_per_message: list[list[dict[str, Any]]] = []
        for message in email_messages:
            if not message.recipients():
                continue  # Like Django's SMTP backend: nothing to send, not counted.
            try:
                bodies_per_message.append(message_payloads(message))
            except InvalidPayload as error:
                if not self.fail_silently:
                    raise
                logger.warning("autosend_queue: message not queued: %s", error)
        now = timezone.now()
        emails = [
            outbox.new_email(body, EmailKind.SINGLE, now)
            for bodies in bodies_per_message
            for body in bodies
        ]
        _write(emails)
        return len(bodies_per_message)


def _write(emails: list[Email]) -> None:
    if emails:
        with transaction.atomic():
            outbox.create_emails(emails)


def message_payloads(message: EmailMessage) -> list[dict[str, Any]]:
    """The validated ``/mails/send`` bodies for ``message``: one per ``to`` address."""
    recipients = payloads.parse_address_list(message.to, "to")
    if not recipients:
        raise InvalidPayload("to", "required", "AutoSend needs a 'to' address; cc or bcc alone")
    html, text = _content(message)
    shared: dict[str, Any] = {
        "from_email": message.from_email or None,
        "reply_to": _reply_to(message),
        "subject": message.subject,
        "html": html,
        "text": text,
    }
    _refuse_unsupported_parts(message)
    first = payloads.build_send_payload(to=recipients[0], cc=message.cc, bcc=message.bcc, **shared)
    return [first] + [payloads.build_send_payload(to=to, **shared) for to in recipients[1:]]


def _content(message: EmailMessage) -> tuple[str | None, str | None]:
    """``(html, text)`` from the body and, for ``EmailMultiAlternatives``, its alternatives."""
    parts: dict[str, str] = {}
    if message.content_subtype in ("plain", "html"):
        parts[f"text/{message.content_subtype}"] = str(message.body)
    else:
        _unsupported("body", f"content_subtype {message.content_subtype!r}")
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype in (HTML, PLAIN) and mimetype not in parts:
            parts[mimetype] = content
        else:
            _unsupported("alternatives", f"a {mimetype} alternative")
    return parts.get(HTML), parts.get(PLAIN)


def _reply_to(message: EmailMessage) -> str | None:
    header = _reply_to_header(message)
    addresses = list(message.reply_to) or ([header] if header else [])
    if len(addresses) > 1:
        _unsupported("reply_to", f"{len(addresses)} addresses (AutoSend takes one)")
    return addresses[0] if addresses else None


def _reply_to_header(message: EmailMessage) -> str | None:
    for name, value in message.extra_headers.items():
        if name.lower() == "reply-to":
            return str(value)
    return None


def _refuse_unsupported_parts(message: EmailMessage) -> None:
    if message.attachments:
        _unsupported("attachments", f"{len(message.attachments)} attachment(s)")
    headers = sorted(name for name in message.extra_headers if name.lower() != "reply-to")
    if headers:
        _unsupported("extra_headers", f"header(s) {', '.join(headers)}")


def _unsupported(field: str, what: str) -> None:
    """Refuse a part AutoSend does not take, or drop it with a warning if the settings say so."""
    if app_settings.DROP_UNSUPPORTED:
        logger.warning("autosend_queue: dropped %s: %s", field, what)
        return
    raise InvalidPayload(
        field,
        "unsupported",
        f"AutoSend does not take {what}; set AUTOSEND_QUEUE['DROP_UNSUPPORTED'] = True "
        "to drop such parts with a warning",
    )
