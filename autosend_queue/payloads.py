"""Build AutoSend request bodies and check them against AutoSend's rules before anything is written.

QStash retries every non-2xx answer, so a body AutoSend would reject with a 400 must never be
published: each rule here raises ``InvalidPayload`` naming the field and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from autosend_queue.conf import app_settings
from autosend_queue.exceptions import InvalidPayload

MAX_SUBJECT_LENGTH = 998
MAX_RECIPIENTS_PER_SEND = 50
MAX_BULK_RECIPIENTS = 100
MAX_PAYLOAD_BYTES = 1_000_000  # QStash's message size limit on the free plan.

Address = dict[str, str]
AddressInput = str | Mapping[str, Any]


def parse_address(value: AddressInput, field: str) -> Address:
    """Turn ``"a@b.c"``, ``"Name <a@b.c>"`` or ``{"email": ..., "name": ...}`` into AutoSend's."""
    if isinstance(value, Mapping):
        address, name = value.get("email"), value.get("name") or ""
    elif isinstance(value, str):
        name, address = parseaddr(value.strip())
    else:
        raise InvalidPayload(
            field, "type", f"must be an address string or a mapping, not {value!r}"
        )
    if not isinstance(address, str) or not isinstance(name, str):
        raise InvalidPayload(field, "type", "email and name must be strings")
    if any(char in address + name for char in "\r\n\0"):
        raise InvalidPayload(field, "control_characters", "must not contain line breaks")
    try:
        validate_email(address)
    except ValidationError:
        message = f"{address!r} is not a valid email address"
        raise InvalidPayload(field, "invalid_address", message) from None
    return {"email": address, "name": name} if name else {"email": address}


def parse_address_list(
    values: AddressInput | Iterable[AddressInput] | None, field: str
) -> list[Address]:
    if values is None:
        return []
    if isinstance(values, str | Mapping):
        values = [values]
    return [parse_address(value, f"{field}[{index}]") for index, value in enumerate(values)]


def build_send_payload(
    *,
    to: AddressInput | Iterable[AddressInput],
    from_email: AddressInput | None = None,
    cc: AddressInput | Iterable[AddressInput] | None = None,
    bcc: AddressInput | Iterable[AddressInput] | None = None,
    reply_to: AddressInput | None = None,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    template_id: str | None = None,
    dynamic_data: Mapping[str, Any] | None = None,
    unsubscribe_group_id: str | None = None,
) -> dict[str, Any]:
    """The body of one ``POST /mails/send``, validated."""
    recipients = parse_address_list(to, "to")
    if not recipients:
        raise InvalidPayload("to", "required", "a recipient is required")
    if len(recipients) > 1:
        raise InvalidPayload(
            "to", "single_recipient", "AutoSend takes one address; use cc, bcc or send_bulk()"
        )
    body: dict[str, Any] = {"to": parse_address(recipients[0], "to")}
    copies = {"cc": parse_address_list(cc, "cc"), "bcc": parse_address_list(bcc, "bcc")}
    if 1 + len(copies["cc"]) + len(copies["bcc"]) > MAX_RECIPIENTS_PER_SEND:
        raise InvalidPayload(
            "cc", "too_many_recipients", f"to + cc + bcc may hold at most {MAX_RECIPIENTS_PER_SEND}"
        )
    body.update({key: value for key, value in copies.items() if value})
    body.update(_shared_fields(from_email, reply_to, unsubscribe_group_id))
    body.update(_content(subject, html, text, template_id, dynamic_data))
    return _checked_size(body)


def build_bulk_payloads(
    recipients: Iterable[AddressInput],
    *,
    from_email: AddressInput | None = None,
    reply_to: AddressInput | None = None,
    subject: str | None = None,
    html: str | None = None,
    text: str | None = None,
    template_id: str | None = None,
    dynamic_data: Mapping[str, Any] | None = None,
    unsubscribe_group_id: str | None = None,
) -> list[dict[str, Any]]:
    """Bodies for ``POST /mails/bulk``, one per chunk of at most 100 recipients, validated."""
    parsed = [_bulk_recipient(value, index) for index, value in enumerate(recipients)]
    if not parsed:
        raise InvalidPayload("recipients", "required", "at least one recipient is required")
    shared = _shared_fields(from_email, reply_to, unsubscribe_group_id)
    shared.update(_content(subject, html, text, template_id, dynamic_data))
    return [
        _checked_size({"recipients": parsed[start : start + MAX_BULK_RECIPIENTS], **shared})
        for start in range(0, len(parsed), MAX_BULK_RECIPIENTS)
    ]


def payload_addresses(payload: Mapping[str, Any]) -> list[str]:
    """Every address a body sends to, in order: to or recipients first, then cc and bcc."""
    entries = [payload["to"]] if "to" in payload else []
    for recipient in payload.get("recipients", []):
        entries.append(recipient)
        entries.extend(recipient.get("cc", []) + recipient.get("bcc", []))
    entries.extend(payload.get("cc", []) + payload.get("bcc", []))
    return [entry["email"] for entry in entries]


def _bulk_recipient(value: AddressInput, index: int) -> dict[str, Any]:
    field = f"recipients[{index}]"
    recipient: dict[str, Any] = parse_address(value, field)
    if not isinstance(value, Mapping):
        return recipient
    data = value.get("dynamicData", value.get("dynamic_data"))
    if data is not None:
        recipient["dynamicData"] = _dynamic_data(data, f"{field}.dynamicData")
    for key in ("cc", "bcc"):
        copies = parse_address_list(value.get(key), f"{field}.{key}")
        if copies:
            recipient[key] = copies
    if 1 + len(recipient.get("cc", [])) + len(recipient.get("bcc", [])) > MAX_RECIPIENTS_PER_SEND:
        raise InvalidPayload(
            f"{field}.cc",
            "too_many_recipients",
            f"email + cc + bcc may hold at most {MAX_RECIPIENTS_PER_SEND}",
        )
    return recipient


def _shared_fields(
    from_email: AddressInput | None,
    reply_to: AddressInput | None,
    unsubscribe_group_id: str | None,
) -> dict[str, Any]:
    sender = from_email or app_settings.DEFAULT_FROM
    if not sender:
        raise InvalidPayload(
            "from", "required", "give from_email or set AUTOSEND_QUEUE['DEFAULT_FROM']"
        )
    fields: dict[str, Any] = {"from": parse_address(sender, "from")}
    if reply_to:
        fields["replyTo"] = parse_address(reply_to, "replyTo")
    if unsubscribe_group_id is not None:
        if not isinstance(unsubscribe_group_id, str) or not unsubscribe_group_id:
            raise InvalidPayload("unsubscribeGroupId", "type", "must be a non-empty string")
        fields["unsubscribeGroupId"] = unsubscribe_group_id
    return fields


def _content(
    subject: str | None,
    html: str | None,
    text: str | None,
    template_id: str | None,
    dynamic_data: Mapping[str, Any] | None,
) -> dict[str, Any]:
    for field, value in (("subject", subject), ("html", html), ("text", text)):
        if value is not None and not isinstance(value, str):
            raise InvalidPayload(field, "type", "must be a string")
    content: dict[str, Any] = {}
    if template_id:
        if not isinstance(template_id, str):
            raise InvalidPayload("templateId", "type", "must be a string")
        if html or text:
            raise InvalidPayload(
                "templateId", "exclusive", "give templateId or html/text, not both"
            )
        content["templateId"] = template_id
    elif not subject:
        raise InvalidPayload("subject", "required", "a subject is required without templateId")
    elif not (html or text):
        raise InvalidPayload("html", "required", "html or text is required without templateId")
    if subject:
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise InvalidPayload(
                "subject", "max_length", f"at most {MAX_SUBJECT_LENGTH} characters ({len(subject)})"
            )
        if "\n" in subject or "\r" in subject:
            raise InvalidPayload("subject", "control_characters", "must not contain line breaks")
        content["subject"] = subject
    content.update({key: value for key, value in (("html", html), ("text", text)) if value})
    if dynamic_data is not None:
        content["dynamicData"] = _dynamic_data(dynamic_data, "dynamicData")
    return content


def _dynamic_data(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidPayload(field, "type", "must be a mapping of names to values")
    try:
        return json.loads(json.dumps(dict(value)))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as error:
        raise InvalidPayload(field, "json", f"must be JSON-serializable ({error})") from None


def _checked_size(body: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(body).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(
            "payload", "max_size", f"at most {MAX_PAYLOAD_BYTES} bytes of JSON ({size})"
        )
    return body
