"""``manage.py autosend_enroll <slug>``: enroll existing users in a sequence, 100 per transaction.

Each chunk is one ``enroll_many`` call, so its Emails are published when it commits, one QStash
call per 100 Emails: 10,000 users in a one-step sequence take 100 calls.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from autosend_queue.exceptions import InvalidPayload
from autosend_queue.management.progress import draw_progress
from autosend_queue.models import Enrollment, Sequence
from autosend_queue.outbox import BATCH_SIZE
from autosend_queue.sequences import enroll_many

CHUNK_SIZE = 100


def since_argument(value: str) -> datetime:
    """``2025-01-31`` (midnight, current time zone) or an ISO datetime."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD) or datetime")
        moment = datetime.combine(day, datetime.min.time())
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Enroll existing active users who are not enrolled yet in a sequence."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="The slug of the sequence.")
        parser.add_argument(
            "--since",
            type=since_argument,
            help="Only users who joined on or after this date (needs a date_joined field).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count who would be enrolled; write nothing."
        )

    def handle(
        self, *args: Any, slug: str, since: datetime | None, dry_run: bool, **options: Any
    ) -> None:
        sequence = self._active_sequence(slug)
        candidates = self._candidates(sequence, since)
        total = candidates.count()
        if dry_run:
            self._report_dry_run(sequence, total)
            return
        started = time.monotonic()
        enrolled = done = 0
        draw_progress(self.stdout, done, total, "users")
        while done < total and (chunk := list(candidates[:CHUNK_SIZE])):
            enrolled += len(self._enroll(chunk, sequence))
            done += len(chunk)
            candidates = candidates.filter(pk__gt=chunk[-1].pk)
            draw_progress(self.stdout, done, total, "users")
        self.stdout.write("")
        self.stdout.write(
            f"Enrolled {enrolled} of {done} users in {sequence.slug!r} in "
            f"{time.monotonic() - started:.1f} s; {done - enrolled} skipped without a valid "
            f"email address."
        )

    def _enroll(self, users: list[Any], sequence: Sequence) -> list[Enrollment]:
        try:
            return enroll_many(users, sequence)
        except InvalidPayload as error:
            raise CommandError(f"A step of {sequence.slug!r} cannot be sent: {error}") from error

    def _active_sequence(self, slug: str) -> Sequence:
        sequence = Sequence.objects.filter(slug=slug).first()
        if sequence is None:
            raise CommandError(f"No sequence has the slug {slug!r}.")
        if not sequence.is_active:
            raise CommandError(f"The sequence {slug!r} is not active; activate it first.")
        return sequence

    def _candidates(self, sequence: Sequence, since: datetime | None) -> QuerySet[Any]:
        user_model = get_user_model()
        users = user_model._default_manager.exclude(**{user_model.get_email_field_name(): ""})
        if hasattr(user_model, "is_active"):
            users = users.filter(is_active=True)
        if since is not None:
            try:
                user_model._meta.get_field("date_joined")
            except FieldDoesNotExist:
                raise CommandError(f"--since needs a date_joined field on {user_model}.") from None
            users = users.filter(date_joined__gte=since)
        enrolled = Enrollment.objects.filter(sequence=sequence, user=OuterRef("pk"))
        return users.exclude(Exists(enrolled)).order_by("pk")

    def _report_dry_run(self, sequence: Sequence, users: int) -> None:
        steps = sequence.steps.filter(is_active=True).count()
        full_chunks, last_chunk = divmod(users, CHUNK_SIZE)
        calls = full_chunks * math.ceil(CHUNK_SIZE * steps / BATCH_SIZE) + math.ceil(
            last_chunk * steps / BATCH_SIZE
        )
        self.stdout.write(
            f"Would enroll {users} users in {sequence.slug!r}: {users * steps} emails "
            f"in {calls} QStash calls. Nothing was written."
        )
