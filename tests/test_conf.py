"""The settings accessor."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autosend_queue.conf import DEFAULTS, app_settings


def test_unset_keys_have_their_defaults(autosend_settings):
    autosend_settings()
    assert app_settings.API_URL == "https://api.autosend.com/v1"
    assert app_settings.RATE_LIMIT == 2
    assert app_settings.RETRIES == 3


def test_override_settings_takes_effect_at_once(autosend_settings):
    autosend_settings(RATE_LIMIT=9)
    assert app_settings.RATE_LIMIT == 9


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="RATE_LIMT"):
        app_settings.RATE_LIMT  # noqa: B018


def test_max_delay_accepts_seconds(autosend_settings):
    autosend_settings(MAX_DELAY=60)
    assert app_settings.max_delay == timedelta(seconds=60)


def test_every_default_is_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in readme]
    assert missing == []
