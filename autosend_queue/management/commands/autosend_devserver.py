"""``manage.py autosend_devserver``: run the local QStash emulator and AutoSend sandbox.

A thin shell around `autosend_queue.devserver.DevServer`; for development and tests only.
"""

import logging
import signal
import threading
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand

from autosend_queue.devserver import (
    DEFAULT_AUTOSEND_PORT,
    DEFAULT_HOST,
    DEFAULT_QSTASH_PORT,
    DEV_CURRENT_SIGNING_KEY,
    DEV_NEXT_SIGNING_KEY,
    DEV_QSTASH_TOKEN,
    DevServer,
)
from autosend_queue.devserver.defaults import DEFAULT_DELIVERY_TIMEOUT, DEFAULT_RATE_LIMIT

WARNING = (
    "autosend_devserver is for development and tests only, NEVER for production: it keeps "
    "everything in memory, sends no real email, and its credentials are public."
)


class Command(BaseCommand):
    help = "Run a local QStash-compatible server and an AutoSend sandbox (development only)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=DEFAULT_HOST)
        parser.add_argument("--qstash-port", type=int, default=DEFAULT_QSTASH_PORT)
        parser.add_argument("--autosend-port", type=int, default=DEFAULT_AUTOSEND_PORT)
        parser.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="Multiply retry backoffs and Retry-After waits (e.g. 0.01 for quick demos).",
        )
        parser.add_argument("--token", default=DEV_QSTASH_TOKEN, help="QStash token to accept.")
        parser.add_argument("--current-signing-key", default=DEV_CURRENT_SIGNING_KEY)
        parser.add_argument("--next-signing-key", default=DEV_NEXT_SIGNING_KEY)
        parser.add_argument(
            "--autosend-api-key",
            default=None,
            help="The only AutoSend key to accept (default: any key starting with AS_).",
        )
        parser.add_argument("--webhook-url", default=None, help="Where to post AutoSend webhooks.")
        parser.add_argument("--webhook-secret", default=None, help="Secret to sign webhooks with.")
        parser.add_argument(
            "--delivery-timeout",
            type=float,
            default=DEFAULT_DELIVERY_TIMEOUT,
            help="Seconds to wait for a destination's answer (Upstash-Timeout overrides it).",
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=DEFAULT_RATE_LIMIT,
            help="AutoSend requests per second per key (0: no limit).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _show_logs()
        server = DevServer(
            host=options["host"],
            qstash_port=options["qstash_port"],
            autosend_port=options["autosend_port"],
            time_scale=options["time_scale"],
            token=options["token"],
            current_signing_key=options["current_signing_key"],
            next_signing_key=options["next_signing_key"],
            autosend_api_key=options["autosend_api_key"],
            webhook_url=options["webhook_url"],
            webhook_secret=options["webhook_secret"],
            rate_limit=options["rate_limit"],
            delivery_timeout=options["delivery_timeout"],
        )
        with server:
            self._print_banner(server, options)
            _wait_for_interrupt()
        self.stdout.write("autosend_devserver stopped.")

    def _print_banner(self, server: DevServer, options: dict[str, Any]) -> None:
        self.stdout.write(self.style.WARNING(WARNING))
        api_key = options["autosend_api_key"] or "AS_<anything>"
        settings_lines = [
            f'    "QSTASH_URL": "{server.qstash_url}",',
            f'    "QSTASH_TOKEN": "{server.token}",',
            f'    "QSTASH_CURRENT_SIGNING_KEY": "{server.current_signing_key}",',
            f'    "QSTASH_NEXT_SIGNING_KEY": "{server.next_signing_key}",',
            f'    "API_URL": "{server.autosend_api_url}",',
            f'    "API_KEY": "{api_key}",',
        ]
        if options["webhook_secret"]:
            settings_lines.append(f'    "WEBHOOK_SECRET": "{options["webhook_secret"]}",')
        self.stdout.write(
            "\n".join(
                [
                    f"QStash emulator: {server.qstash_url}",
                    f"AutoSend sandbox: {server.autosend_api_url} (inbox: {server.autosend_url}/)",
                    "Settings to use:",
                    "AUTOSEND_QUEUE = {",
                    *settings_lines,
                    "}",
                    "Stop with Ctrl-C.",
                ]
            )
        )


def _show_logs() -> None:
    """Print the devserver's per-attempt log lines unless logging is already configured."""
    logger = logging.getLogger("autosend_queue.devserver")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C (KeyboardInterrupt) or SIGTERM."""
    stopping = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        # Short waits in a loop, so that Ctrl-C is noticed promptly everywhere.
        while not stopping.wait(timeout=0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
