"""QStash's callbacks, applied to Emails: the source of every Email's status.

QStash calls back after each delivery attempt to AutoSend, and once more (the failure callback)
when its retries are exhausted. Callbacks arrive more than once and out of order, so applying one
is a single transaction with a constant number of queries: the Email row is locked, moved with
``states.transition`` if the machine allows it (a late ``retrying`` after ``sent`` is not), and one
EmailEvent records what was seen. Facts that hold whatever the status (how many attempts were
made, the DLQ id) are kept even when the status does not move. ``email_sent``/``email_failed`` are
sent once per transition, after the commit.

Nothing from the callback's ``sourceHeader``/``sourceBody`` is read or stored: the former carries
the forwarded AutoSend ``Authorization`` header.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from autosend_queue import states
from autosend_queue.exceptions import InvalidPayload
from autosend_queue.models import Email, EmailEvent
from autosend_queue.signals import email_failed, email_sent
from autosend_queue.text import storable

logger = logging.getLogger(__name__)

ANSWER_LIMIT = 2000
ERROR_LIMIT = 1000
ID_LIMIT = 100
RETRIES_LIMIT = 1000
LATEST_MILLISECONDS = 253402300799999  # the last millisecond of year 9999


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    UNKNOWN_EMAIL = "unknown_email"


@dataclass(frozen=True)
class Callback:
    """The fields of a QStash callback body that this app uses, checked."""

    status_code: int
    answer: bytes
    retried: int
    max_retries: int
    source_message_id: str = ""
    dlq_id: str = ""
    created_at: datetime | None = None
    failure: bool = False

    @property
    def attempt(self) -> int:
        return self.retried + 1

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def target(self) -> str:
        """The status this callback says the Email is in: a 2xx answer is ``sent`` wherever it
        arrives; the failure callback and the last failed attempt are ``failed``."""
        if self.succeeded:
            return states.SENT
        if self.failure or self.retried >= self.max_retries:
            return states.FAILED
        return states.RETRYING


@dataclass(frozen=True)
class AutoSendAnswer:
    """What AutoSend answered QStash, as far as this app needs it."""

    text: str
    email_id: str = ""
    batch_id: str = ""
    error_message: str = ""
    error_code: str = ""


def apply_callback(email_uuid: UUID, document: Mapping[str, Any], *, failure: bool) -> Outcome:
    """Apply a verified callback body to the Email ``email_uuid``.

    Raises ``InvalidPayload`` naming the field for a body QStash would not send. An unknown UUID
    is logged and reported as such, so the view can still acknowledge it.
    """
    callback = parse_callback(document, failure=failure)
    answer = read_answer(callback.answer)
    with transaction.atomic():
        email = Email.objects.select_for_update().filter(uuid=email_uuid).first()
        if email is None:
            logger.warning("autosend_queue: callback for unknown email %s acknowledged", email_uuid)
            return Outcome.UNKNOWN_EMAIL
        moved = _apply(email, callback, answer)
    return Outcome.APPLIED if moved else Outcome.IGNORED


def parse_callback(document: Mapping[str, Any], *, failure: bool) -> Callback:
    """The checked fields of a callback body; ``InvalidPayload`` names the first bad one."""
    return Callback(
        status_code=_integer(document, "status", minimum=100, maximum=599),
        answer=_base64(document, "body"),
        retried=_integer(document, "retried", maximum=RETRIES_LIMIT),
        max_retries=_integer(document, "maxRetries", maximum=RETRIES_LIMIT),
        source_message_id=_identifier(document, "sourceMessageId"),
        dlq_id=_identifier(document, "dlqId"),
        created_at=_milliseconds(document, "createdAt"),
        failure=failure,
    )


def read_answer(raw: bytes) -> AutoSendAnswer:
    """AutoSend's answer: the ids of a success, or the message and code of an error.

    Errors come as ``{"error": {"message", "code"}}``, a plain string ``error`` or a top-level
    ``message``; all are accepted. An answer that is not JSON is kept as text.
    """
    text = raw.decode("utf-8", "replace")
    document = _json_object(text)
    data = _mapping(document.get("data"))
    return AutoSendAnswer(
        text=storable(text, ANSWER_LIMIT),
        email_id=_answer_identifier(data.get("emailId")),
        batch_id=_answer_identifier(data.get("batchId")),
        error_message=storable(_error_message(document), ERROR_LIMIT),
        error_code=_answer_identifier(_mapping(document.get("error")).get("code")),
    )


def describe_error(callback: Callback, answer: AutoSendAnswer) -> str:
    """The last error as staff read it: ``HTTP 400 VALIDATION_FAILED: Missing recipient``."""
    status = " ".join(part for part in (f"HTTP {callback.status_code}", answer.error_code) if part)
    detail = answer.error_message or answer.text
    return storable(f"{status}: {detail}" if detail else status, ERROR_LIMIT)


def _apply(email: Email, callback: Callback, answer: AutoSendAnswer) -> bool:
    previous_status = email.status
    moved = _write(email, callback, answer)
    if moved:
        _signal_on_commit(email, callback.target)
    else:
        logger.info(
            "autosend_queue: %s callback for email %s ignored: it is %s",
            callback.target,
            email.uuid,
            previous_status,
        )
    EmailEvent.objects.create(
        email=email,
        kind=_event_kind(callback.target, moved),
        data=_event_data(email, callback, answer, ignored_status="" if moved else previous_status),
    )
    return moved


def _write(email: Email, callback: Callback, answer: AutoSendAnswer) -> bool:
    """One UPDATE of the locked row, mirrored on ``email``; whether its status moved.

    Facts that hold whatever the status (the attempts made, the DLQ id) are written either way;
    the status and its fields only where the machine allows the move.
    """
    changes: dict[str, Any] = {"attempts": max(email.attempts, callback.attempt)}
    if callback.dlq_id:
        changes["dlq_id"] = callback.dlq_id
    moved = False
    if email.status in states.ALLOWED_SOURCES[callback.target]:
        changes.update(_status_fields(email, callback, answer))
        moved = states.transition([email.pk], callback.target, fields=changes) == 1
    else:
        Email.objects.filter(pk=email.pk).update(**changes)
    for name, value in changes.items():
        setattr(email, name, value)
    if moved:
        email.status = callback.target
    return moved


def _status_fields(email: Email, callback: Callback, answer: AutoSendAnswer) -> dict[str, Any]:
    """The fields that go with the status the callback moves the Email to."""
    if callback.succeeded:
        fields: dict[str, Any] = {"sent_at": timezone.now(), "last_error": ""}
        if answer.email_id:
            fields["autosend_email_id"] = answer.email_id
        if answer.batch_id:
            fields["autosend_batch_id"] = answer.batch_id
        return fields
    if callback.attempt >= email.attempts or callback.target == states.FAILED:
        return {"last_error": describe_error(callback, answer)}
    return {}  # An older attempt's error must not replace a newer one's.


def _event_kind(target: str, moved: bool) -> str:
    if not moved:
        return EmailEvent.Kind.IGNORED
    return EmailEvent.Kind.FAILED if target == states.FAILED else EmailEvent.Kind.ATTEMPT


def _event_data(
    email: Email, callback: Callback, answer: AutoSendAnswer, *, ignored_status: str
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "callback": "failure" if callback.failure else "attempt",
        "attempt": callback.attempt,
        "max_retries": callback.max_retries,
        "status_code": callback.status_code,
        "outcome": callback.target,
        "answer": answer.text,
        "message_id": callback.source_message_id,
    }
    if email.qstash_message_id and callback.source_message_id != email.qstash_message_id:
        data["expected_message_id"] = email.qstash_message_id
    if not callback.succeeded:
        data["error"] = {"message": answer.error_message, "code": answer.error_code}
    if callback.dlq_id:
        data["dlq_id"] = callback.dlq_id
    if callback.created_at is not None:
        data["created_at"] = callback.created_at.isoformat()
    if ignored_status:
        data["ignored_because"] = f"the email is {ignored_status}"
    return data


def _signal_on_commit(email: Email, status: str) -> None:
    if status == states.SENT:
        transaction.on_commit(lambda: email_sent.send(sender=Email, email=email))
    elif status == states.FAILED:
        reason = email.last_error
        transaction.on_commit(lambda: email_failed.send(sender=Email, email=email, reason=reason))


def _integer(document: Mapping[str, Any], field: str, *, minimum: int = 0, maximum: int) -> int:
    """A required whole number, given as a JSON number or a string of digits."""
    value = document.get(field)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if value is None:
        raise InvalidPayload(field, "required", "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayload(field, "type", "must be a whole number")
    if not minimum <= value <= maximum:
        raise InvalidPayload(field, "range", f"must be between {minimum} and {maximum}")
    return value


def _base64(document: Mapping[str, Any], field: str) -> bytes:
    value = document.get(field) or ""
    if not isinstance(value, str):
        raise InvalidPayload(field, "type", "must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPayload(field, "base64", "must be valid base64") from None


def _identifier(document: Mapping[str, Any], field: str) -> str:
    value = document.get(field) or ""
    if not isinstance(value, str):
        raise InvalidPayload(field, "type", "must be a string")
    if len(value) > ID_LIMIT:
        raise InvalidPayload(field, "max_length", f"must be at most {ID_LIMIT} characters")
    return storable(value, ID_LIMIT)


def _milliseconds(document: Mapping[str, Any], field: str) -> datetime | None:
    """An optional instant given in milliseconds since the epoch, as a number or a string."""
    if document.get(field) in (None, ""):
        return None
    milliseconds = _integer(document, field, maximum=LATEST_MILLISECONDS)
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        return _mapping(json.loads(text))
    except (ValueError, RecursionError):
        return {}


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _error_message(document: Mapping[str, Any]) -> str:
    error = document.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
    elif isinstance(error, str) and error:
        message = error
    else:
        message = document.get("message")
    return message if isinstance(message, str) else ""


def _answer_identifier(value: object) -> str:
    """An id from AutoSend's answer, if it looks like one; anything else is left out."""
    if isinstance(value, str) and 0 < len(value) <= ID_LIMIT:
        return storable(value, ID_LIMIT)
    return ""
