"""AutoSend's rules for the bodies of `/v1/mails/send` and `/v1/mails/bulk`."""

import re
from dataclasses import dataclass
from typing import Any

MAX_SUBJECT_LENGTH = 998
MAX_RECIPIENTS_PER_EMAIL = 50
MAX_BULK_RECIPIENTS = 100

_EMAIL = re.compile(
    r"[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


@dataclass(frozen=True)
class FieldError:
    """One entry of ``error.details`` in a 400 answer."""

    field: str
    message: str

    def to_api(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def is_valid_email(value: Any) -> bool:
    return isinstance(value, str) and _EMAIL.fullmatch(value) is not None


def validate_send(payload: Any) -> list[FieldError]:
    """Every rule a ``/v1/mails/send`` body breaks; empty when AutoSend would accept it."""
    if not isinstance(payload, dict):
        return [FieldError("body", "Request body must be a JSON object")]
    if "to" not in payload:
        recipient_errors = [FieldError("to", "Recipient (to) is required")]
    else:
        recipient_errors = _address_errors(payload["to"], "to")
    return [
        *recipient_errors,
        *_copy_errors(payload, ""),
        *_recipient_count_errors(payload, ""),
        *_common_errors(payload),
    ]


def validate_bulk(payload: Any) -> list[FieldError]:
    """Every rule a ``/v1/mails/bulk`` body breaks; empty when AutoSend would accept it."""
    if not isinstance(payload, dict):
        return [FieldError("body", "Request body must be a JSON object")]
    return [*_recipients_errors(payload.get("recipients")), *_common_errors(payload)]


def _common_errors(payload: dict[str, Any]) -> list[FieldError]:
    """The rules shared by send and bulk: sender, reply-to, content, subject, dynamic data."""
    errors = []
    if "from" not in payload:
        errors.append(FieldError("from", "Sender (from) is required"))
    else:
        errors += _address_errors(payload["from"], "from")
    if "replyTo" in payload:
        errors += _address_errors(payload["replyTo"], "replyTo")
    errors += _content_errors(payload)
    errors += _dynamic_data_errors(payload, "")
    return errors


def _content_errors(payload: dict[str, Any]) -> list[FieldError]:
    """Either a templateId, or a subject with html and/or text."""
    errors = []
    subject = payload.get("subject")
    if subject is not None and not isinstance(subject, str):
        errors.append(FieldError("subject", "Subject must be a string"))
    elif isinstance(subject, str) and len(subject) > MAX_SUBJECT_LENGTH:
        errors.append(
            FieldError("subject", f"Subject must be at most {MAX_SUBJECT_LENGTH} characters")
        )
    if "templateId" in payload:
        if not isinstance(payload["templateId"], str) or not payload["templateId"]:
            errors.append(FieldError("templateId", "templateId must be a non-empty string"))
        return errors
    if not subject:
        errors.append(FieldError("subject", "Subject is required when no templateId is given"))
    if not any(isinstance(payload.get(part), str) and payload[part] for part in ("html", "text")):
        errors.append(FieldError("html", "Either html or text is required when no templateId"))
    return errors


def _recipients_errors(recipients: Any) -> list[FieldError]:
    if not isinstance(recipients, list) or not recipients:
        return [FieldError("recipients", "recipients must be a non-empty array")]
    if len(recipients) > MAX_BULK_RECIPIENTS:
        return [FieldError("recipients", f"At most {MAX_BULK_RECIPIENTS} recipients per request")]
    errors = []
    for index, recipient in enumerate(recipients):
        field = f"recipients[{index}]"
        errors += _address_errors(recipient, field)
        if isinstance(recipient, dict):
            errors += _dynamic_data_errors(recipient, f"{field}.")
            errors += _copy_errors(recipient, f"{field}.")
            errors += _recipient_count_errors(recipient, f"{field}.")
    return errors


def _copy_errors(holder: dict[str, Any], prefix: str) -> list[FieldError]:
    """The cc and bcc lists: arrays of addresses."""
    errors = []
    for name in ("cc", "bcc"):
        if name not in holder:
            continue
        addresses = holder[name]
        if not isinstance(addresses, list):
            errors.append(FieldError(prefix + name, f"{name} must be an array"))
            continue
        for index, address in enumerate(addresses):
            errors += _address_errors(address, f"{prefix}{name}[{index}]")
    return errors


def _recipient_count_errors(holder: dict[str, Any], prefix: str) -> list[FieldError]:
    """One main recipient plus the cc and bcc lists must stay within the limit."""
    copies = sum(len(holder[n]) for n in ("cc", "bcc") if isinstance(holder.get(n), list))
    if 1 + copies <= MAX_RECIPIENTS_PER_EMAIL:
        return []
    limit = MAX_RECIPIENTS_PER_EMAIL
    return [FieldError(prefix + "to", f"At most {limit} recipients (to, cc and bcc together)")]


def _address_errors(address: Any, field: str) -> list[FieldError]:
    if not isinstance(address, dict):
        return [FieldError(field, "Must be an object with an email")]
    errors = []
    if not is_valid_email(address.get("email")):
        errors.append(FieldError(f"{field}.email", "Invalid email address"))
    if "name" in address and not isinstance(address["name"], str):
        errors.append(FieldError(f"{field}.name", "Name must be a string"))
    return errors


def _dynamic_data_errors(holder: dict[str, Any], prefix: str) -> list[FieldError]:
    if "dynamicData" in holder and not isinstance(holder["dynamicData"], dict):
        return [FieldError(prefix + "dynamicData", "dynamicData must be an object")]
    return []
