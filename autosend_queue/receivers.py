"""Signal receivers the app connects in ``AppConfig.ready``: drip sequences follow the users.

- A user created active is enrolled in every active signup sequence once the signup commits
  (``ENROLL_ON_SIGNUP``). Nothing here may break a signup: errors are logged.
- A user deleted, or saved inactive, has their remaining drip Emails cancelled.
- An Email sent (or failed for good) may be the last of its enrollment, which is then completed:
  the sequence has nothing more to send.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_delete

from autosend_queue import sequences
from autosend_queue.conf import app_settings
from autosend_queue.models import Email, Sequence
from autosend_queue.signals import email_failed, email_sent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)


def connect() -> None:
    """Connect the receivers; the user model is named lazily, so any AUTH_USER_MODEL works."""
    user_model = settings.AUTH_USER_MODEL
    post_save.connect(user_saved, sender=user_model, dispatch_uid="autosend_queue.user_saved")
    pre_delete.connect(user_deleted, sender=user_model, dispatch_uid="autosend_queue.user_deleted")
    email_sent.connect(email_settled, sender=Email, dispatch_uid="autosend_queue.email_sent")
    email_failed.connect(email_settled, sender=Email, dispatch_uid="autosend_queue.email_failed")


def user_saved(
    sender: type[AbstractBaseUser],
    instance: AbstractBaseUser,
    created: bool,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    if raw:  # loaddata: fixtures are not signups.
        return
    if not getattr(instance, "is_active", True):
        sequences.cancel_for_user(instance)
    elif created and app_settings.ENROLL_ON_SIGNUP:
        transaction.on_commit(partial(enroll_after_signup, instance))


def user_deleted(sender: type[AbstractBaseUser], instance: AbstractBaseUser, **kwargs: Any) -> None:
    sequences.cancel_for_user(instance)


def email_settled(sender: type[Email], email: Email, **kwargs: Any) -> None:
    if email.enrollment_id is not None:
        sequences.complete_if_finished(email.enrollment_id)


def enroll_after_signup(user: AbstractBaseUser) -> None:
    """Enroll a new user in every active signup sequence, in one transaction, so all their
    Emails go to QStash in one call. A failing sequence is logged and skipped."""
    try:
        with transaction.atomic():
            signup_sequences = list(
                Sequence.objects.filter(trigger=Sequence.Trigger.SIGNUP, is_active=True)
            )
            for sequence in signup_sequences:
                _enroll_logging_errors(user, sequence)
    except Exception:
        logger.exception("autosend_queue: could not enroll new user %s", user.pk)


def _enroll_logging_errors(user: AbstractBaseUser, sequence: Sequence) -> None:
    try:
        with transaction.atomic():
            sequences.enroll(user, sequence)
    except Exception:
        logger.exception("autosend_queue: could not enroll user %s in %r", user.pk, sequence.slug)
