"""Transports hand Emails to QStash (or, in tests, to memory). ``get_transport()`` picks one.

``TRANSPORT`` is ``"qstash"`` (default), ``"locmem"``, or the dotted path of a class with the
``Transport`` interface. The instance is cached until a setting changes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from autosend_queue.conf import app_settings
from autosend_queue.exceptions import ConfigurationError
from autosend_queue.transports.base import PublishResult, Transport

__all__ = ["PublishResult", "Transport", "get_transport"]

BUILT_IN = {
    "qstash": "autosend_queue.transports.qstash.QStashTransport",
    "locmem": "autosend_queue.transports.locmem.LocmemTransport",
}


def get_transport() -> Transport:
    return _transport_for(app_settings.TRANSPORT)


@cache
def _transport_for(name: str) -> Transport:
    path = BUILT_IN.get(name, name)
    try:
        transport_class = import_string(path)
    except ImportError as error:
        raise ConfigurationError(f"AUTOSEND_QUEUE['TRANSPORT'] = {name!r}: {error}") from error
    return transport_class()  # type: ignore[no-any-return]


@receiver(setting_changed)
def _forget_transport(*, setting: str, **kwargs: Any) -> None:
    if setting == "AUTOSEND_QUEUE":
        _transport_for.cache_clear()
