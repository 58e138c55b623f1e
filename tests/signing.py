"""Signing like QStash: real HS256 JWTs over a body, and callback bodies shaped like QStash's.

The body hash is computed here independently of ``autosend_queue.signing``, so a test that
passes proves the app agrees with QStash, not with itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import jwt
from django.test import Client
from django.urls import reverse

from autosend_queue.conf import app_settings
from autosend_queue.models import Email

# QStash's public development keys (its local server's test user): 32 bytes, as real keys are.
CURRENT_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
NEXT_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"
OMIT = object()
"""Pass as a claim's value to leave the claim out of the token."""


def qstash_body_claim(body: bytes, *, padded: bool = True) -> str:
    encoded = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()
    return encoded if padded else encoded.rstrip("=")


def qstash_signature(
    raw_body: bytes,
    url: str,
    /,
    *,
    key: str = CURRENT_KEY,
    algorithm: str = "HS256",
    issued_at: float | None = None,
    **claims: Any,
) -> str:
    """A token as QStash signs one: ``claims`` replace (or, given ``OMIT``, remove) defaults."""
    now = int(time.time() if issued_at is None else issued_at)
    payload: dict[str, Any] = {
        "iss": "Upstash",
        "sub": url,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": f"jwt_{uuid.uuid4().hex}",
        "body": qstash_body_claim(raw_body),
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not OMIT}
    return jwt.encode(payload, key if algorithm != "none" else None, algorithm=algorithm)


def callback_url(email: Email, *, failure: bool = False) -> str:
    """The public URL QStash calls for ``email``, built independently of the transports."""
    name = "autosend_queue:failure_callback" if failure else "autosend_queue:callback"
    return app_settings.PUBLIC_URL + reverse(name, kwargs={"email_uuid": email.uuid})


def callback_document(
    *,
    status: int = 200,
    answer: Any = None,
    retried: int = 0,
    max_retries: int = 3,
    message_id: str = "msg_00000001",
    **fields: Any,
) -> dict[str, Any]:
    """A callback body like QStash's, carrying ``answer`` (JSON-encoded unless bytes or str)."""
    if answer is None:
        answer = {"success": True, "data": {"emailId": "a" * 24, "totalRecipients": 1}}
    raw_answer = answer if isinstance(answer, bytes) else _encoded(answer)
    source_body = json.dumps({"to": {"email": "reader@example.com"}}).encode()
    document: dict[str, Any] = {
        "status": status,
        "header": {"Content-Type": ["application/json"]},
        "body": base64.b64encode(raw_answer).decode(),
        "retried": retried,
        "maxRetries": max_retries,
        "sourceMessageId": message_id,
        "topicName": "",
        "endpointName": "",
        "url": "https://api.autosend.com/v1/mails/send",
        "method": "POST",
        "sourceHeader": {"Authorization": [f"Bearer {app_settings.API_KEY}"]},
        "sourceBody": base64.b64encode(source_body).decode(),
        "notBefore": "0",
        "createdAt": str(int(time.time() * 1000)),
        "scheduleId": "",
        "callerIP": "203.0.113.7",
    }
    document.update(fields)
    return document


def failure_document(*, dlq_id: str = "dlq_00000001", **fields: Any) -> dict[str, Any]:
    """A failure callback body: the last attempt's answer plus the DLQ id."""
    fields.setdefault("status", 500)
    fields.setdefault("retried", fields.get("max_retries", 3))
    fields.setdefault("answer", {"success": False, "error": {"message": "Down", "code": "E"}})
    return callback_document(dlqId=dlq_id, **fields)


def post_signed(
    client: Client,
    email: Email,
    body: bytes | dict[str, Any],
    *,
    failure: bool = False,
    **signature: Any,
) -> Any:
    """POST ``body`` to ``email``'s callback endpoint, signed as QStash would sign it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    url = callback_url(email, failure=failure)
    return client.post(
        url.removeprefix(app_settings.PUBLIC_URL),
        raw,
        content_type="application/json",
        headers={"Upstash-Signature": qstash_signature(raw, url, **signature)},
    )


def _encoded(answer: Any) -> bytes:
    return answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
