"""``manage.py autosend_sendtest --to ADDR``: send one email with the current settings and report.

It goes through the same path as any email (outbox, QStash, AutoSend, callback), then waits for
the callback to settle its status, so it checks a whole configuration: against the devserver or
the real services.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailStatus
from autosend_queue.outbox import send_email

SETTLED = {EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.CANCELLED}


class Command(BaseCommand):
    help = "Send one test email with the current AUTOSEND_QUEUE settings and report what happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="The address to send to.")
        parser.add_argument("--subject", default="django-autosend-queue test")
        parser.add_argument(
            "--wait", type=float, default=30.0, help="Seconds to wait for the callback (0: don't)."
        )

    def handle(self, *args: Any, to: str, subject: str, wait: float, **options: Any) -> None:
        try:
            email = send_email(to, subject=subject, text="If you can read this, it works.")
        except InvalidPayload as error:
            raise CommandError(str(error)) from error
        email = self._settle(email, wait)
        self._report(email)
        accepted = EmailStatus.QUEUED if wait == 0 else EmailStatus.SENT
        if email.status not in (accepted, EmailStatus.SENT):
            raise CommandError(
                f"The email is {email.status}: {email.last_error or 'no answer yet'}"
            )

    def _settle(self, email: Email, wait: float) -> Email:
        deadline = time.monotonic() + wait
        email.refresh_from_db()
        while email.status not in SETTLED and time.monotonic() < deadline:
            time.sleep(0.25)
            email.refresh_from_db()
        return email

    def _report(self, email: Email) -> None:
        self.stdout.write(f"Email {email.uuid}: {email.status}")
        for label, value in (
            ("QStash message", email.qstash_message_id),
            ("AutoSend email id", email.autosend_email_id),
            ("attempts", email.attempts),
            ("last error", email.last_error),
        ):
            if value:
                self.stdout.write(f"  {label}: {value}")
        for event in email.events.order_by("id"):
            self.stdout.write(f"  {event.created_at:%H:%M:%S} {event.get_kind_display()}")
