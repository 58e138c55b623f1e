"""System checks for AUTOSEND_QUEUE."""

from __future__ import annotations

import pytest
from django.test import override_settings

from autosend_queue.checks import check_settings


def ids(**changes) -> list[str]:
    from django.conf import settings

    with override_settings(
        AUTOSEND_QUEUE={**settings.AUTOSEND_QUEUE, "TRANSPORT": "qstash", **changes}
    ):
        return [message.id for message in check_settings()]


def test_a_complete_configuration_passes():
    assert ids() == []


@pytest.mark.parametrize(
    ("key", "check_id"),
    [
        ("API_KEY", "autosend_queue.E001"),
        ("QSTASH_TOKEN", "autosend_queue.E002"),
        ("QSTASH_CURRENT_SIGNING_KEY", "autosend_queue.E003"),
        ("QSTASH_NEXT_SIGNING_KEY", "autosend_queue.E003"),
        ("PUBLIC_URL", "autosend_queue.E004"),
    ],
)
def test_a_missing_key_with_the_qstash_transport_is_an_error(key, check_id):
    assert ids(**{key: ""}) == [check_id]


def test_locmem_needs_no_credentials():
    assert ids(TRANSPORT="locmem", API_KEY="", QSTASH_TOKEN="", PUBLIC_URL="") == []


def test_a_relative_public_url_is_an_error():
    assert ids(PUBLIC_URL="example.com") == ["autosend_queue.E004"]


def test_plain_http_public_url_outside_debug_is_a_warning():
    assert ids(PUBLIC_URL="http://example.com") == ["autosend_queue.W001"]


@override_settings(DEBUG=True)
def test_plain_http_public_url_in_debug_is_fine():
    assert ids(PUBLIC_URL="http://127.0.0.1:8000") == []


@pytest.mark.parametrize("rate", [0, -1, "2", 1.5])
def test_a_rate_limit_that_is_not_a_positive_integer_is_an_error(rate):
    assert ids(RATE_LIMIT=rate) == ["autosend_queue.E005"]


def test_an_unimportable_transport_is_an_error():
    assert ids(TRANSPORT="nowhere.Transport") == ["autosend_queue.E006"]


def test_an_unknown_key_is_a_warning():
    assert ids(RATE_LIMT=3) == ["autosend_queue.W002"]


@pytest.mark.django_db
def test_checks_run_with_manage_py_check():
    from django.core.management import call_command

    call_command("check")


def test_a_user_data_path_that_does_not_import_is_an_error():
    assert ids(USER_DATA="nowhere.user_data") == ["autosend_queue.E007"]


def test_a_user_data_that_is_not_callable_is_an_error():
    assert ids(USER_DATA="autosend_queue.conf.DEFAULTS") == ["autosend_queue.E007"]


def test_a_callable_user_data_passes():
    assert ids(USER_DATA="autosend_queue.sequences.default_user_data") == []


def test_a_missing_webhook_secret_is_a_warning():
    assert ids(WEBHOOK_SECRET="") == ["autosend_queue.W003"]
