"""The Email status machine: the one function that changes ``Email.status``.

A transition is a single conditional UPDATE (``WHERE status IN <allowed sources>``), so two
callbacks racing for the same row cannot both win, and a transition that would go backwards
(``sent`` to ``retrying``) changes nothing. Callers learn from the row count whether it applied.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from django.db.models import Case, Field, Value, When
from django.utils import timezone

from autosend_queue.models import Email, EmailStatus

PENDING, QUEUED, RETRYING, SENT, FAILED, CANCELLED = (
    EmailStatus.PENDING,
    EmailStatus.QUEUED,
    EmailStatus.RETRYING,
    EmailStatus.SENT,
    EmailStatus.FAILED,
    EmailStatus.CANCELLED,
)

# Where each status may be reached from. A callback can overtake the answer to the publish call,
# so delivery outcomes are allowed from ``pending`` too. ``sent`` is a fact about the world (the
# email went out), so it wins over ``cancelled`` and ``failed``.
ALLOWED_SOURCES: dict[str, frozenset[str]] = {
    QUEUED: frozenset({PENDING}),
    RETRYING: frozenset({PENDING, QUEUED, RETRYING}),
    SENT: frozenset({PENDING, QUEUED, RETRYING, FAILED, CANCELLED}),
    FAILED: frozenset({PENDING, QUEUED, RETRYING}),
    CANCELLED: frozenset({PENDING, QUEUED, RETRYING}),
}

CANCELLABLE = ALLOWED_SOURCES[CANCELLED]
IN_FLIGHT = frozenset({PENDING, QUEUED, RETRYING})


def transition(
    email_ids: Collection[int],
    to: str,
    *,
    fields: Mapping[str, Any] | None = None,
    per_email: Mapping[int, Mapping[str, Any]] | None = None,
) -> int:
    """Move the given Emails to ``to`` where the machine allows it; return how many moved.

    ``fields`` are set on every row that moves; ``per_email`` maps an Email id to values for that
    row alone (a QStash message id, an error), applied in the same UPDATE with CASE.
    """
    if not email_ids:
        return 0
    values: dict[str, Any] = {"status": to, "updated_at": timezone.now(), **(fields or {})}
    values.update(_per_row_values(per_email or {}))
    return Email.objects.filter(pk__in=list(email_ids), status__in=ALLOWED_SOURCES[to]).update(
        **values
    )


def _per_row_values(per_email: Mapping[int, Mapping[str, Any]]) -> dict[str, Case]:
    names = {name for values in per_email.values() for name in values}
    return {name: per_row_value(name, per_email) for name in names}


def per_row_value(name: str, per_email: Mapping[int, Mapping[str, Any]]) -> Case:
    """A CASE giving each Email in ``per_email`` its own value of field ``name``."""
    return Case(
        *(
            When(pk=email_id, then=Value(values[name]))
            for email_id, values in per_email.items()
            if name in values
        ),
        default=name,
        output_field=cast(Field, Email._meta.get_field(name)),
    )
