"""``manage.py autosend_prune --older-than DAYS``: delete old Email history in batches.

Only finished Emails (sent, failed, cancelled) can be pruned: pending, queued and retrying ones
are still in flight, and deleting them would orphan what QStash holds. Each batch deletes up to
``--batch-size`` Emails with their events and recipients (by cascade) in one transaction, so a
long prune never holds a lock on the whole history.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from autosend_queue import states
from autosend_queue.management.progress import draw_progress
from autosend_queue.models import Email, EmailStatus

PRUNABLE = (EmailStatus.SENT, EmailStatus.FAILED, EmailStatus.CANCELLED)


class Command(BaseCommand):
    help = "Delete sent, failed and cancelled Emails older than --older-than days, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="Delete Emails created more than DAYS days ago.",
        )
        parser.add_argument(
            "--status",
            action="append",
            dest="statuses",
            metavar="STATUS",
            help="Only Emails with this status (repeatable; sent, failed or cancelled). "
            "Default: all three.",
        )
        parser.add_argument("--batch-size", type=int, default=1000, help="Emails per batch.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = _positive("--older-than", options["older_than"])
        batch_size = _positive("--batch-size", options["batch_size"])
        statuses = _prunable_statuses(options["statuses"] or list(PRUNABLE))
        cutoff = timezone.now() - timedelta(days=days)
        old = Email.objects.filter(created_at__lt=cutoff, status__in=statuses)
        total = old.count()
        described = f"{total} {'/'.join(statuses)} emails created before {cutoff:%Y-%m-%d %H:%M}"
        if options["dry_run"]:
            self.stdout.write(f"Would delete {described}.")
            return
        show_progress = options["verbosity"] > 0 and total > 0
        deleted = 0
        for deleted in self._delete_in_batches(old, batch_size):
            if show_progress:
                draw_progress(self.stdout, deleted, total, "emails")
        if show_progress:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} of {described}."))

    def _delete_in_batches(self, old: QuerySet[Email], batch_size: int) -> Iterator[int]:
        """Yield the running total after each batch, oldest ids first."""
        deleted = 0
        while True:
            with transaction.atomic():
                ids = list(old.order_by("id").values_list("id", flat=True)[:batch_size])
                if not ids:
                    return
                # The status is checked again in the DELETE itself: nothing in flight, ever.
                _, per_model = old.filter(id__in=ids).delete()
            deleted += per_model.get(Email._meta.label, 0)
            yield deleted


def _positive(option: str, value: int) -> int:
    if value < 1:
        raise CommandError(f"{option} must be a positive whole number, not {value}.")
    return value


def _prunable_statuses(statuses: list[str]) -> list[str]:
    for status in statuses:
        if status in states.IN_FLIGHT:
            raise CommandError(
                f"--status {status}: autosend_prune never deletes pending, queued or retrying "
                "emails, which are still in flight. Choose from sent, failed, cancelled."
            )
        if status not in PRUNABLE:
            raise CommandError(
                f"--status {status}: not an email status. Choose from sent, failed, cancelled."
            )
    return sorted(set(statuses))
