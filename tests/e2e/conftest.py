"""End-to-end wiring: Django's live server, the devserver, and the real qstash transport.

Everything crosses real HTTP on 127.0.0.1: the SDK publishes to the devserver, which delivers
to its AutoSend sandbox and calls back the live server, whose views check the signatures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from autosend_queue.devserver import DevServer
from autosend_queue.models import Email

E2E_API_KEY = "AS_e2e_key"


@pytest.fixture(scope="session")
def devserver(live_server: Any) -> Iterator[DevServer]:
    server = DevServer(
        qstash_port=0,
        autosend_port=0,
        time_scale=0.001,
        rate_limit=0,
        webhook_url=f"{live_server.url}/autosend/webhook/",
        webhook_secret=settings.AUTOSEND_QUEUE["WEBHOOK_SECRET"],
    )
    with server:
        yield server


@pytest.fixture
def dev(devserver: DevServer, live_server: Any, autosend_settings: Any) -> Iterator[DevServer]:
    """The devserver, emptied, with the app configured to use it through the qstash transport."""
    autosend_settings(
        TRANSPORT="qstash",
        API_KEY=E2E_API_KEY,
        API_URL=devserver.autosend_api_url,
        QSTASH_URL=devserver.qstash_url,
        QSTASH_TOKEN=devserver.token,
        QSTASH_CURRENT_SIGNING_KEY=devserver.current_signing_key,
        QSTASH_NEXT_SIGNING_KEY=devserver.next_signing_key,
        PUBLIC_URL=live_server.url,
    )
    yield devserver
    devserver.reset(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.05)


def wait_for_status(email: Email, status: str, timeout: float = 15.0) -> Email:
    def reached() -> bool:
        email.refresh_from_db()
        return email.status == status

    wait_for(reached, timeout, f"{email.uuid} to be {status} (it is {email.status})")
    return email
