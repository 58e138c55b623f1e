"""Durations as people say them: "2 days 3 hours", not Django's "2 days, 3:00:00"."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext, ngettext

UNITS: tuple[tuple[int, str, str], ...] = (
    (86400, "%(count)d day", "%(count)d days"),
    (3600, "%(count)d hour", "%(count)d hours"),
    (60, "%(count)d minute", "%(count)d minutes"),
    (1, "%(count)d second", "%(count)d seconds"),
)


def humanize_duration(duration: timedelta) -> str:
    """``timedelta(days=2, hours=3)`` as ``"2 days 3 hours"``: whole seconds, no zero parts."""
    remaining = int(duration.total_seconds())
    parts = []
    for seconds, singular, plural in UNITS:
        count, remaining = divmod(remaining, seconds)
        if count:
            parts.append(ngettext(singular, plural, count) % {"count": count})
    return " ".join(parts) or gettext("0 seconds")


def describe_delay(delay: timedelta) -> str:
    """When a step is sent, relative to enrollment: ``"after 2 days 3 hours"``."""
    if delay <= timedelta(0):
        return gettext("at enrollment")
    return gettext("after %(duration)s") % {"duration": humanize_duration(delay)}
