"""System checks for the AUTOSEND_QUEUE settings, registered in ``AppConfig.ready``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from autosend_queue.conf import DEFAULTS, app_settings
from autosend_queue.transports import BUILT_IN


def register() -> None:
    checks.register(check_settings, checks.Tags.compatibility)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    return [
        *_unknown_keys(),
        *_qstash_credentials(),
        *_public_url(),
        *_rate_limit(),
        *_transport(),
        *_user_data(),
        *_webhook_secret(),
    ]


def _error(number: int, message: str, hint: str = "") -> checks.Error:
    return checks.Error(message, hint=hint or None, id=f"autosend_queue.E{number:03d}")


def _warning(number: int, message: str, hint: str = "") -> checks.Warning:
    return checks.Warning(message, hint=hint or None, id=f"autosend_queue.W{number:03d}")


def _uses_qstash() -> bool:
    return app_settings.TRANSPORT == "qstash"


def _qstash_credentials() -> list[checks.CheckMessage]:
    if not _uses_qstash():
        return []
    problems: list[checks.CheckMessage] = []
    if not app_settings.API_KEY:
        problems.append(
            _error(1, "AUTOSEND_QUEUE['API_KEY'] is not set.", "Your AutoSend API key (AS_...).")
        )
    if not app_settings.QSTASH_TOKEN:
        problems.append(
            _error(
                2,
                "AUTOSEND_QUEUE['QSTASH_TOKEN'] is not set.",
                "The token from the Upstash console.",
            )
        )
    if not (app_settings.QSTASH_CURRENT_SIGNING_KEY and app_settings.QSTASH_NEXT_SIGNING_KEY):
        problems.append(
            _error(
                3,
                "AUTOSEND_QUEUE['QSTASH_CURRENT_SIGNING_KEY'] and "
                "['QSTASH_NEXT_SIGNING_KEY'] must both be set.",
                "Without them every QStash callback is refused, and no Email leaves 'queued'.",
            )
        )
    return problems


def _public_url() -> list[checks.CheckMessage]:
    url = app_settings.PUBLIC_URL
    if not url:
        if not _uses_qstash():
            return []
        return [
            _error(
                4,
                "AUTOSEND_QUEUE['PUBLIC_URL'] is not set.",
                "The site's public base URL, e.g. https://example.com; QStash calls back there.",
            )
        ]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [
            _error(4, f"AUTOSEND_QUEUE['PUBLIC_URL'] = {url!r} is not an absolute http(s) URL.")
        ]
    if parts.scheme != "https" and not settings.DEBUG:
        return [
            _warning(
                1,
                f"AUTOSEND_QUEUE['PUBLIC_URL'] = {url!r} is not https.",
                "Callbacks carry delivery results; serve them over https.",
            )
        ]
    return []


def _rate_limit() -> list[checks.CheckMessage]:
    rate = app_settings.RATE_LIMIT
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        return [
            _error(
                5,
                f"AUTOSEND_QUEUE['RATE_LIMIT'] = {rate!r} must be a positive integer "
                "(requests per second).",
            )
        ]
    return []


def _transport() -> list[checks.CheckMessage]:
    name = app_settings.TRANSPORT
    try:
        import_string(BUILT_IN.get(name, name))
    except ImportError as error:
        return [
            _error(
                6,
                f"AUTOSEND_QUEUE['TRANSPORT'] = {name!r} cannot be imported: {error}",
                "Use 'qstash', 'locmem' or a dotted path.",
            )
        ]
    return []


def _unknown_keys() -> list[checks.CheckMessage]:
    unknown = sorted(set(app_settings.user_settings) - set(DEFAULTS))
    if not unknown:
        return []
    return [
        _warning(
            2,
            f"AUTOSEND_QUEUE has unknown keys: {', '.join(unknown)}.",
            f"Known keys: {', '.join(DEFAULTS)}.",
        )
    ]


def _user_data() -> list[checks.CheckMessage]:
    path = app_settings.USER_DATA
    if path is None:
        return []
    try:
        function = import_string(path) if isinstance(path, str) else path
    except ImportError as error:
        return [_error(7, f"AUTOSEND_QUEUE['USER_DATA'] = {path!r} cannot be imported: {error}")]
    if not callable(function):
        return [_error(7, f"AUTOSEND_QUEUE['USER_DATA'] = {path!r} is not callable.")]
    return []


def _webhook_secret() -> list[checks.CheckMessage]:
    if app_settings.WEBHOOK_SECRET or not _uses_qstash():
        return []
    return [
        _warning(
            3,
            "AUTOSEND_QUEUE['WEBHOOK_SECRET'] is not set: every AutoSend webhook is refused.",
            "Set it to the webhook's signing secret (whsec_...) to track delivery.",
        )
    ]
