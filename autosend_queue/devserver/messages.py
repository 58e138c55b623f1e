"""QStash messages as the devserver holds them: read from publish headers, shown in API answers."""

import base64
import hashlib
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .durations import parse_duration
from .scheduler import FlowControl

DEFAULT_RETRIES = 3
MAX_BACKOFF_SECONDS = 86400
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
_FLOW_CONTROL_FIELDS = frozenset({"rate", "period", "parallelism"})
# Publish headers that belong to the connection, not to the message; never echoed back.
_CONNECTION_HEADERS = frozenset({"Authorization", "Host", "Content-Length", "Connection"})


class PublishError(ValueError):
    """A publish request QStash would refuse with 400; the text is the reason."""


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(16)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def encode_base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def as_header_lists(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """``{k: v}`` -> ``{k: [v]}``, the shape QStash uses for headers in JSON."""
    return {name: [value] for name, value in headers.items()}


@dataclass
class QStashMessage:
    """One published message, from acceptance until it is delivered, dead-lettered or cancelled."""

    message_id: str
    url: str
    method: str
    body: bytes
    forward_headers: dict[str, str]
    callback_headers: dict[str, str]
    failure_callback_headers: dict[str, str]
    source_headers: dict[str, str]
    max_retries: int
    callback: str | None
    failure_callback: str | None
    not_before_ms: int
    created_at_ms: int
    caller_ip: str
    flow: FlowControl | None
    timeout: float | None
    label: str | None
    queue: str | None
    retried: int = 0
    state: Literal["CREATED", "ACTIVE", "RETRY"] = "CREATED"

    def to_api(self) -> dict[str, Any]:
        """The answer of ``GET /v2/messages/{id}``, with every field the SDK reads."""
        data: dict[str, Any] = {
            "messageId": self.message_id,
            "url": self.url,
            "method": self.method,
            "header": as_header_lists(self.forward_headers),
            "maxRetries": self.max_retries,
            "retried": self.retried,
            "notBefore": self.not_before_ms,
            "createdAt": self.created_at_ms,
            "callerIP": self.caller_ip,
            "state": self.state,
            **_body_fields(self.body, "body"),
        }
        optional = {
            "callback": self.callback,
            "failureCallback": self.failure_callback,
            "callbackHeader": as_header_lists(self.callback_headers) or None,
            "failureCallbackHeader": as_header_lists(self.failure_callback_headers) or None,
            "queueName": self.queue,
            "label": self.label,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.flow is not None:
            data.update(_flow_control_fields(self.flow))
        return data


@dataclass
class DeadLetter:
    """A message whose retries ran out, with the last answer its destination gave."""

    dlq_id: str
    message: QStashMessage
    response_status: int
    response_headers: dict[str, list[str]]
    response_body: bytes

    def to_api(self) -> dict[str, Any]:
        """One entry of ``GET /v2/dlq``, with every field the SDK reads."""
        return {
            **self.message.to_api(),
            "dlqId": self.dlq_id,
            "responseStatus": self.response_status,
            "responseHeader": self.response_headers,
            **_body_fields(self.response_body, "responseBody"),
        }


@dataclass(frozen=True)
class Attempt:
    """A request the devserver made: a delivery or a callback, and the status it got.

    ``status`` is 0 when no answer came (the connection failed or timed out).
    """

    kind: Literal["delivery", "callback", "failure_callback"]
    message_id: str
    url: str
    retried: int
    status: int
    at: float = field(default_factory=time.time)


def backoff_seconds(retry_number: int, retry_after: str | None) -> float:
    """Seconds QStash waits before retry number ``retry_number`` (1 for the first retry).

    A ``Retry-After`` in seconds from the destination wins over the exponential backoff.
    """
    if retry_after is not None and retry_after.strip().isdigit():
        return min(MAX_BACKOFF_SECONDS, int(retry_after))
    return min(MAX_BACKOFF_SECONDS, math.exp(2.5 * retry_number))


def parse_message(
    url: str, headers: Mapping[str, str], body: bytes, caller_ip: str, queue: str | None = None
) -> QStashMessage:
    """Build the message a publish asks for; ``headers`` keys are in canonical form.

    Raises PublishError for what QStash would answer 400.
    """
    if not url.startswith(("http://", "https://")):
        raise PublishError(f"invalid destination url: {url}")
    created_at_ms = now_ms()
    forward_headers = _prefixed(headers, "Upstash-Forward-")
    if "Content-Type" in headers:
        forward_headers["Content-Type"] = headers["Content-Type"]
    return QStashMessage(
        message_id=new_message_id(),
        url=url,
        method=_method(headers),
        body=body,
        forward_headers=forward_headers,
        callback_headers=_prefixed(headers, "Upstash-Callback-Forward-"),
        failure_callback_headers=_prefixed(headers, "Upstash-Failure-Callback-Forward-"),
        source_headers={k: v for k, v in headers.items() if k not in _CONNECTION_HEADERS},
        max_retries=_non_negative_int(headers.get("Upstash-Retries"), "Upstash-Retries"),
        callback=_optional_url(headers.get("Upstash-Callback"), "Upstash-Callback"),
        failure_callback=_optional_url(
            headers.get("Upstash-Failure-Callback"), "Upstash-Failure-Callback"
        ),
        not_before_ms=_not_before_ms(headers, created_at_ms),
        created_at_ms=created_at_ms,
        caller_ip=caller_ip,
        flow=_flow_control(headers),
        timeout=_duration(headers.get("Upstash-Timeout"), "Upstash-Timeout"),
        label=headers.get("Upstash-Label"),
        queue=queue,
    )


def deduplication_key(message: QStashMessage, headers: Mapping[str, str]) -> str | None:
    """The key under which a publish is deduplicated, or None when it asks for no deduplication.

    Content-based deduplication hashes the destination, the body and the forwarded headers
    (Content-Type included), as QStash documents.
    """
    if "Upstash-Deduplication-Id" in headers:
        return "id:" + headers["Upstash-Deduplication-Id"]
    if headers.get("Upstash-Content-Based-Deduplication", "").lower() != "true":
        return None
    digest = hashlib.sha256(message.url.encode() + b"\0" + message.body)
    for name, value in sorted(message.forward_headers.items()):
        digest.update(f"\0{name}:{value}".encode())
    return "content:" + digest.hexdigest()


def _body_fields(body: bytes, name: str) -> dict[str, str]:
    """``{name: text}`` for a UTF-8 body, else ``{nameBase64: ...}``, as QStash answers bodies."""
    try:
        return {name: body.decode()}
    except UnicodeDecodeError:
        return {name + "Base64": encode_base64(body)}


def _flow_control_fields(flow: FlowControl) -> dict[str, Any]:
    fields: dict[str, Any] = {"flowControlKey": flow.key, "period": int(flow.period)}
    if flow.rate is not None:
        fields["rate"] = flow.rate
    if flow.parallelism is not None:
        fields["parallelism"] = flow.parallelism
    return fields


def _prefixed(headers: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The headers starting with ``prefix``, with the prefix removed."""
    return {
        name[len(prefix) :]: value
        for name, value in headers.items()
        if name.startswith(prefix) and len(name) > len(prefix)
    }


def _method(headers: Mapping[str, str]) -> str:
    method = headers.get("Upstash-Method", "POST").upper()
    if method not in HTTP_METHODS:
        raise PublishError(f"invalid Upstash-Method: {method}")
    return method


def _non_negative_int(value: str | None, name: str) -> int:
    if value is None:
        return DEFAULT_RETRIES
    if not value.strip().isdigit():
        raise PublishError(f"invalid {name}: {value}")
    return int(value)


def _optional_url(value: str | None, name: str) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise PublishError(f"invalid {name}: {value}")
    return value


def _duration(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise PublishError(f"invalid {name}: {value}") from error


def _not_before_ms(headers: Mapping[str, str], created_at_ms: int) -> int:
    """When the first attempt may start: Upstash-Not-Before wins over Upstash-Delay."""
    not_before = headers.get("Upstash-Not-Before")
    if not_before is not None:
        if not not_before.strip().isdigit():
            raise PublishError(f"invalid Upstash-Not-Before: {not_before}")
        return int(not_before) * 1000
    delay = _duration(headers.get("Upstash-Delay"), "Upstash-Delay") or 0.0
    return created_at_ms + int(delay * 1000)


def _flow_control(headers: Mapping[str, str]) -> FlowControl | None:
    key = headers.get("Upstash-Flow-Control-Key")
    if key is None:
        return None
    settings = _flow_control_settings(headers.get("Upstash-Flow-Control-Value", ""))
    period = _duration(settings.get("period", "1s"), "flow control period") or 1.0
    return FlowControl(
        key=key,
        rate=_positive_setting(settings, "rate"),
        period=period,
        parallelism=_positive_setting(settings, "parallelism"),
    )


def _flow_control_settings(value: str) -> dict[str, str]:
    """``"rate=2, period=1s"`` -> ``{"rate": "2", "period": "1s"}``."""
    settings = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, equals, setting = item.partition("=")
        name = name.strip().lower()
        if not equals or name not in _FLOW_CONTROL_FIELDS:
            raise PublishError(f"invalid Upstash-Flow-Control-Value: {value}")
        settings[name] = setting.strip()
    return settings


def _positive_setting(settings: Mapping[str, str], name: str) -> int | None:
    value = settings.get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise PublishError(f"invalid flow control {name}: {value}")
    return int(value)
