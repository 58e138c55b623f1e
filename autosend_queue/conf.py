"""The one accessor for the ``AUTOSEND_QUEUE`` settings dict.

Values are read on every attribute access, so ``override_settings(AUTOSEND_QUEUE=...)`` takes
effect at once. Every key has a default here; README.md documents them all.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "API_KEY": "",
    "API_URL": "https://api.autosend.com/v1",
    "PROJECT_ID": "",
    "DEFAULT_FROM": "",
    "QSTASH_TOKEN": "",
    "QSTASH_URL": "https://qstash.upstash.io",
    "QSTASH_CURRENT_SIGNING_KEY": "",
    "QSTASH_NEXT_SIGNING_KEY": "",
    "PUBLIC_URL": "",
    "RETRIES": 3,
    "RATE_LIMIT": 2,
    "MAX_DELAY": timedelta(days=7),
    "TRANSPORT": "qstash",
    "HTTP_TIMEOUT": 10.0,
    "SIGNATURE_LEEWAY": 5,
    "MAX_BODY_SIZE": 1024 * 1024,
    "WEBHOOK_SECRET": "",
    "ENROLL_ON_SIGNUP": True,
    "USER_DATA": None,
    "DROP_UNSUPPORTED": False,
}


class AppSettings:
    """Attribute access to ``settings.AUTOSEND_QUEUE`` with the defaults filled in."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"AUTOSEND_QUEUE has no setting {name!r}")
        return self.user_settings.get(name, DEFAULTS[name])

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, "AUTOSEND_QUEUE", None) or {}

    @property
    def max_delay(self) -> timedelta:
        value = self.MAX_DELAY
        return value if isinstance(value, timedelta) else timedelta(seconds=value)

    def public_url_for(self, path: str) -> str:
        """The public URL of a site path: ``PUBLIC_URL`` (scheme and host) joined to it."""
        return self.PUBLIC_URL.rstrip("/") + path


app_settings = AppSettings()
