"""The demo's data: a superuser and an "onboarding" sequence at demo scale."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model

from autosend_queue.models import Sequence, SequenceStep

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - a local demo's published credentials

ONBOARDING_STEPS = [
    (timedelta(0), "Welcome to the demo", "<h1>Welcome {{username}}</h1><p>Glad you're here.</p>"),
    (
        timedelta(minutes=1),
        "A tip to get started",
        "<p>Tip: everything you send shows up in the admin.</p>",
    ),
    (timedelta(minutes=3), "How is it going?", "<p>Three minutes in: reply and tell us.</p>"),
]


def seed() -> Sequence:
    """Create the demo superuser and the onboarding sequence; safe to run again."""
    user_model = get_user_model()
    if not user_model.objects.filter(username=ADMIN_USERNAME).exists():
        user_model.objects.create_superuser(ADMIN_USERNAME, "admin@demo.example", ADMIN_PASSWORD)
    sequence, _ = Sequence.objects.update_or_create(
        slug="onboarding",
        defaults={"name": "Onboarding", "trigger": Sequence.Trigger.SIGNUP, "is_active": True},
    )
    for position, (delay, subject, html) in enumerate(ONBOARDING_STEPS, start=1):
        SequenceStep.objects.update_or_create(
            sequence=sequence,
            position=position,
            defaults={"delay": delay, "subject": subject, "html": html, "is_active": True},
        )
    return sequence
