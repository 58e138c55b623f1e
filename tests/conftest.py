"""Fixtures shared by the whole suite."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import respx
from django.conf import settings
from django.test import override_settings

from autosend_queue.transports import locmem
from tests.signing import CURRENT_KEY, NEXT_KEY

QSTASH_URL = "https://qstash.test"
CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose machinery is missing, unless CI said it must be there.

    ``postgres`` tests need ``DATABASE_URL`` to point at PostgreSQL, ``browser`` tests need
    Debian's Chromium. With ``REQUIRE_POSTGRES=1`` / ``REQUIRE_BROWSER=1`` (set by .ci/run) a
    missing one fails the run instead of skipping quietly.
    """
    missing = {
        "postgres": None
        if settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
        else "needs DATABASE_URL=postgres://...",
        "browser": None
        if shutil.which(CHROMIUM)
        else f"needs {CHROMIUM} (apt-get install chromium)",
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and item.get_closest_marker(marker):
                if os.environ.get(f"REQUIRE_{marker.upper()}"):
                    raise pytest.UsageError(
                        f"{item.nodeid} {reason}, and REQUIRE_{marker.upper()} is set"
                    )
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _empty_locmem_outbox() -> Iterator[None]:
    locmem.outbox.clear()
    locmem.cancelled.clear()
    yield
    locmem.outbox.clear()
    locmem.cancelled.clear()


@pytest.fixture
def autosend_settings() -> Iterator[Any]:
    """Change AUTOSEND_QUEUE keys for one test: ``autosend_settings(RATE_LIMIT=5)``."""
    overrides: list[override_settings] = []

    def apply(**changes: Any) -> None:
        merged = copy.deepcopy(settings.AUTOSEND_QUEUE)
        merged.update(changes)
        override = override_settings(AUTOSEND_QUEUE=merged)
        override.enable()
        overrides.append(override)

    yield apply
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def qstash(autosend_settings: Any) -> Iterator[respx.MockRouter]:
    """The real SDK behind the qstash transport, with its HTTP boundary observed by respx."""
    autosend_settings(TRANSPORT="qstash", QSTASH_URL=QSTASH_URL)
    with respx.mock(base_url=QSTASH_URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def mocker_transport_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every publish call the locmem transport receives, in order."""
    calls: list[int] = []
    original = locmem.LocmemTransport.publish

    def counting(self: locmem.LocmemTransport, emails: Any) -> Any:
        calls.append(len(emails))
        return original(self, emails)

    monkeypatch.setattr(locmem.LocmemTransport, "publish", counting)
    return calls


@pytest.fixture
def qstash_signing_keys(autosend_settings: Any) -> None:
    """QStash's public development signing keys, which ``tests.signing`` signs with."""
    autosend_settings(QSTASH_CURRENT_SIGNING_KEY=CURRENT_KEY, QSTASH_NEXT_SIGNING_KEY=NEXT_KEY)
