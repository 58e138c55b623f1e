"""Outbox cost: queries and QStash calls per send and per flush, as the work grows.

Counts are exact (queries captured, QStash calls observed with respx at the SDK's HTTP
boundary); times are wall-clock in this run, reported as ratios so machines compare.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import count

import httpx
import respx
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from autosend_queue import send_bulk, send_email
from autosend_queue.models import Email, EmailEvent, EmailRecipient
from autosend_queue.outbox import flush
from tests.factories import EmailFactory

QSTASH_URL = "https://qstash.bench"


@contextmanager
def qstash() -> Iterator[respx.Route]:
    ids = count(1)

    def accept(request: httpx.Request) -> httpx.Response:
        entries = json.loads(request.content)
        return httpx.Response(201, json=[{"messageId": f"msg_{next(ids)}"} for _ in entries])

    config = {**settings.AUTOSEND_QUEUE, "TRANSPORT": "qstash", "QSTASH_URL": QSTASH_URL}
    with override_settings(AUTOSEND_QUEUE=config), respx.mock(base_url=QSTASH_URL) as router:
        yield router.post("/v2/batch").mock(side_effect=accept)


def measure(
    work: Callable[[], object], setup: Callable[[], object] = lambda: None
) -> tuple[int, int, float]:
    """(queries, QStash calls, seconds) for ``work``, after emptying the tables and ``setup``."""
    for model in (EmailEvent, EmailRecipient, Email):
        model.objects.all().delete()
    setup()
    with qstash() as route, CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
    return len(queries), route.call_count, elapsed


def send_in_one_transaction(n: int) -> Callable[[], object]:
    def work() -> None:
        with transaction.atomic():
            for index in range(n):
                send_email(f"reader{index}@example.com", subject="Hello", html="<p>Hi</p>")

    return work


def bulk_send(n: int) -> Callable[[], object]:
    return lambda: send_bulk([f"r{i}@example.com" for i in range(n)], template_id="A-1")


def pending_emails(n: int) -> Callable[[], object]:
    return lambda: Email.objects.bulk_create(EmailFactory.build() for _ in range(n))


def run() -> list[str]:
    measure(send_in_one_transaction(1))  # Warm up: the first publish builds the SDK's client.
    lines = []
    for label, make, prepare, sizes in (
        ("send_email x n in one transaction", send_in_one_transaction, None, (1, 100)),
        ("send_bulk to n recipients", bulk_send, None, (1, 100, 1000)),
        ("flush n pending", lambda n: flush, pending_emails, (100, 10_000)),
    ):
        results = {n: measure(make(n), prepare(n) if prepare else lambda: None) for n in sizes}
        first = results[sizes[0]]
        for n, (queries, calls, seconds) in results.items():
            lines.append(
                f"{label:<36} n={n:<6} queries={queries:<6} qstash_calls={calls:<4} "
                f"time={seconds * 1000:8.1f} ms  ({seconds / first[2]:.1f}x n={sizes[0]})"
            )
    return lines
