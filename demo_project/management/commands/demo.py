"""``manage.py demo``: seed the demo, start the local QStash and AutoSend sandbox, run the site.

The devserver's ports come from the settings (``QSTASH_URL``, ``API_URL``), so what the site
publishes to and what is listening are the same by construction. Ctrl-C stops everything.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from autosend_queue.conf import app_settings
from autosend_queue.devserver import DevServer
from demo_project.seed import ADMIN_PASSWORD, ADMIN_USERNAME, seed


class Command(BaseCommand):
    help = "Run the demo: seed it, start the devserver and the site, and print where to click."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--time-scale", type=float, default=0.05, help="Scale retry waits.")

    def handle(self, *args: Any, time_scale: float, **options: Any) -> None:
        seed()
        site = urlsplit(app_settings.PUBLIC_URL)
        devserver = DevServer(
            host="127.0.0.1",
            qstash_port=urlsplit(app_settings.QSTASH_URL).port or 8080,
            autosend_port=urlsplit(app_settings.API_URL).port or 8081,
            time_scale=time_scale,
            webhook_url=app_settings.public_url_for(reverse("autosend_queue:webhook")),
            webhook_secret=app_settings.WEBHOOK_SECRET,
        )
        with devserver:
            self._print_banner(devserver)
            call_command("runserver", f"{site.hostname}:{site.port or 8000}", use_reloader=False)

    def _print_banner(self, devserver: DevServer) -> None:
        site = app_settings.PUBLIC_URL.rstrip("/")
        lines = [
            "",
            "The demo is running. The local QStash server and AutoSend sandbox are for",
            "development only, never for production.",
            "",
            f"  1. Sign up:        {site}/signup/",
            f"  2. Admin history:  {site}/admin/autosend_queue/email/"
            f"   (user {ADMIN_USERNAME!r}, password {ADMIN_PASSWORD!r})",
            f"  3. Sandbox inbox:  {devserver.autosend_url}/",
            "",
            f"  QStash (local):    {devserver.qstash_url}",
            "",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
