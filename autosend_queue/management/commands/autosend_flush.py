"""``manage.py autosend_flush``: publish every due pending Email (safe from cron, every minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from autosend_queue.models import Email
from autosend_queue.outbox import due, flush


class Command(BaseCommand):
    help = "Publish the pending Emails that are due, 100 per QStash call."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what is due; publish nothing."
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        if dry_run:
            self.stdout.write(f"{due(Email.objects.all()).count()} pending emails are due.")
            return
        summary = flush()
        self.stdout.write(
            f"Published {summary.queued} emails in {summary.calls} QStash calls; "
            f"{summary.deferred} stay pending (QStash unreachable), {summary.failed} refused."
        )
