"""An in-memory QStash: the v2 REST API the ``qstash`` SDK calls, and the deliveries it promises.

Publishing (single and batch), deduplication, delays, flow control, signed deliveries with
exponential retries, per-attempt callbacks, failure callbacks and the dead-letter queue.
"""

import hmac
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from .httpserver import Request, Response, canonical_header
from .messages import (
    Attempt,
    DeadLetter,
    PublishError,
    QStashMessage,
    as_header_lists,
    backoff_seconds,
    deduplication_key,
    encode_base64,
    new_message_id,
    now_ms,
    parse_message,
)
from .scheduler import Scheduler
from .signing import qstash_signature

logger = logging.getLogger(__name__)

DEDUPLICATION_WINDOW_SECONDS = 600
CALLBACK_RETRIES = 3
DLQ_PAGE_SIZE = 100

CallbackKind = Literal["callback", "failure_callback"]


@dataclass(frozen=True)
class _Answer:
    """What a destination answered; ``status`` 0 when it did not answer at all."""

    status: int
    headers: dict[str, list[str]]
    body: bytes

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


class QStashEmulator:
    """The QStash side of the devserver; `handle` is its HTTP entry point."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        client: httpx.Client,
        token: str,
        signing_key: str,
        time_scale: float,
        delivery_timeout: float,
    ) -> None:
        self._scheduler = scheduler
        self._client = client
        self._token = token
        self._signing_key = signing_key
        self._time_scale = time_scale
        self._delivery_timeout = delivery_timeout
        self._lock = threading.Lock()
        self._messages: dict[str, QStashMessage] = {}
        self._deduplication: dict[str, tuple[str, float]] = {}
        self._dead_letters: dict[str, DeadLetter] = {}
        self._attempts: list[Attempt] = []
        self._dlq_ids = itertools.count()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("POST", re.compile(r"/v2/publish/(?P<destination>.+)"), self._publish),
            ("POST", re.compile(r"/v2/batch/?"), self._batch),
            ("GET", re.compile(r"/v2/messages/(?P<message_id>[^/?]+)"), self._get_message),
            ("DELETE", re.compile(r"/v2/messages/(?P<message_id>[^/?]+)"), self._cancel),
            ("DELETE", re.compile(r"/v2/messages/?"), self._cancel_many),
            ("GET", re.compile(r"/v2/dlq/?(?:\?.*)?"), self._list_dlq),
            ("GET", re.compile(r"/v2/dlq/(?P<dlq_id>[^/?]+)"), self._get_dead_letter),
            ("DELETE", re.compile(r"/v2/dlq/(?P<dlq_id>[^/?]+)"), self._delete_dead_letter),
            ("DELETE", re.compile(r"/v2/dlq/?"), self._delete_dead_letters),
        ]

    # Python API, for tests and the demo.

    @property
    def messages(self) -> list[QStashMessage]:
        """The messages QStash still holds: waiting, being delivered or between retries."""
        with self._lock:
            return list(self._messages.values())

    @property
    def dlq(self) -> list[DeadLetter]:
        with self._lock:
            return list(self._dead_letters.values())

    @property
    def attempts(self) -> list[Attempt]:
        """Every delivery and callback request made so far, oldest first."""
        with self._lock:
            return list(self._attempts)

    def drop_messages(self) -> None:
        """Forget the messages not delivered yet, as if each had been cancelled."""
        with self._lock:
            self._messages.clear()

    def reset(self) -> None:
        """Forget every message, dead letter, attempt and deduplication id."""
        with self._lock:
            self._messages.clear()
            self._dead_letters.clear()
            self._attempts.clear()
            self._deduplication.clear()

    def release(self, message_id: str) -> bool:
        """Deliver a waiting (delayed or between retries) message now; False if none was waiting."""
        return self._scheduler.make_due_now(message_id) > 0

    # HTTP entry point.

    def handle(self, request: Request) -> Response:
        supplied = request.bearer_token() or ""
        if not hmac.compare_digest(supplied.encode(), self._token.encode()):
            return Response.json(401, {"error": "Unauthorized"})
        for method, pattern, endpoint in self._routes:
            match = pattern.fullmatch(request.raw_path)
            if request.method == method and match:
                return endpoint(request, **match.groupdict())
        return Response.json(404, {"error": f"not found: {request.method} {request.path}"})

    def _publish(self, request: Request, destination: str) -> Response:
        try:
            result = self._accept(destination, request.headers, request.body, request.client_ip)
        except PublishError as error:
            return Response.json(400, {"error": str(error)})
        return Response.json(202 if result.get("deduplicated") else 201, result)

    def _batch(self, request: Request) -> Response:
        try:
            entries = request.json()
        except ValueError:
            entries = None
        if not isinstance(entries, list):
            return Response.json(400, {"error": "body must be a JSON array of messages"})
        return Response.json(
            201, [self._accept_entry(entry, request.client_ip) for entry in entries]
        )

    def _accept_entry(self, entry: Any, caller_ip: str) -> dict[str, Any]:
        """Accept one batch entry; a bad entry gets an error answer and does not stop the rest."""
        try:
            destination, headers, body, queue = _read_batch_entry(entry)
            return self._accept(destination, headers, body, caller_ip, queue)
        except PublishError as error:
            return {"error": str(error)}

    def _accept(
        self,
        destination: str,
        headers: Mapping[str, str],
        body: bytes,
        caller_ip: str,
        queue: str | None = None,
    ) -> dict[str, Any]:
        message = parse_message(destination, headers, body, caller_ip, queue)
        key = deduplication_key(message, headers)
        with self._lock:
            first_id = self._seen_recently(key)
            if first_id is not None:
                return {"messageId": first_id, "deduplicated": True}
            if key is not None:
                expires = time.monotonic() + DEDUPLICATION_WINDOW_SECONDS
                self._deduplication[key] = (message.message_id, expires)
            self._messages[message.message_id] = message
        wait = max(0.0, message.not_before_ms / 1000 - time.time())
        self._schedule_delivery(message, time.monotonic() + wait)
        return {"messageId": message.message_id}

    def _seen_recently(self, key: str | None) -> str | None:
        """The id of the message first published under ``key`` within the window, if any."""
        now = time.monotonic()
        for stale in [k for k, (_, expires) in self._deduplication.items() if expires <= now]:
            del self._deduplication[stale]
        seen = self._deduplication.get(key) if key is not None else None
        return seen[0] if seen else None

    def _get_message(self, request: Request, message_id: str) -> Response:
        with self._lock:
            message = self._messages.get(message_id)
            if message is None:
                return _message_not_found(message_id)
            return Response.json(200, message.to_api())

    def _cancel(self, request: Request, message_id: str) -> Response:
        with self._lock:
            if self._messages.pop(message_id, None) is None:
                return _message_not_found(message_id)
        logger.info("message %s cancelled", message_id)
        return Response(202)

    def _cancel_many(self, request: Request) -> Response:
        try:
            wanted = request.json()
        except ValueError:
            return Response.json(400, {"error": "body must be JSON"})
        with self._lock:
            if wanted is None:  # no body: the SDK's cancel_all()
                ids = list(self._messages)
            elif isinstance(wanted, dict) and isinstance(wanted.get("messageIds"), list):
                ids = [i for i in wanted["messageIds"] if isinstance(i, str)]
            else:
                return Response.json(400, {"error": 'body must be {"messageIds": [...]}'})
            cancelled = [i for i in ids if self._messages.pop(i, None) is not None]
        logger.info("%d messages cancelled", len(cancelled))
        return Response.json(200, {"cancelled": len(cancelled)})

    def _list_dlq(self, request: Request) -> Response:
        query = request.query
        try:
            start = int(query.get("cursor", "0"))
            count = min(DLQ_PAGE_SIZE, int(query.get("count", DLQ_PAGE_SIZE)))
        except ValueError:
            return Response.json(400, {"error": "cursor and count must be integers"})
        with self._lock:
            matching = [d for d in self._dead_letters.values() if _matches_filter(d, query)]
        page = matching[start : start + count]
        answer: dict[str, Any] = {"messages": [entry.to_api() for entry in page]}
        if start + count < len(matching):
            answer["cursor"] = str(start + count)
        return Response.json(200, answer)

    def _get_dead_letter(self, request: Request, dlq_id: str) -> Response:
        with self._lock:
            entry = self._dead_letters.get(dlq_id)
        if entry is None:
            return Response.json(404, {"error": f"dlq message {dlq_id} not found"})
        return Response.json(200, entry.to_api())

    def _delete_dead_letter(self, request: Request, dlq_id: str) -> Response:
        with self._lock:
            if self._dead_letters.pop(dlq_id, None) is None:
                return Response.json(404, {"error": f"dlq message {dlq_id} not found"})
        return Response(200)

    def _delete_dead_letters(self, request: Request) -> Response:
        try:
            wanted = request.json()
            ids = [i for i in wanted["dlqIds"] if isinstance(i, str)]
        except (ValueError, TypeError, KeyError):
            return Response.json(400, {"error": 'body must be {"dlqIds": [...]}'})
        with self._lock:
            deleted = [i for i in ids if self._dead_letters.pop(i, None) is not None]
        return Response.json(200, {"deleted": len(deleted)})

    # Deliveries.

    def _schedule_delivery(self, message: QStashMessage, due: float) -> None:
        def still_held() -> bool:
            with self._lock:
                return self._messages.get(message.message_id) is message

        self._scheduler.call_at(
            due,
            lambda: self._attempt_delivery(message),
            flow=message.flow,
            is_live=still_held,
            tag=message.message_id,
        )

    def _attempt_delivery(self, message: QStashMessage) -> None:
        with self._lock:
            if self._messages.get(message.message_id) is not message:
                return  # cancelled while it waited for a worker
            message.state = "ACTIVE"
        answer = self._signed_request(
            message.method,
            message.url,
            message.body,
            {**message.forward_headers, **self._delivery_headers(message)},
            timeout=message.timeout or self._delivery_timeout,
        )
        self._record("delivery", message.message_id, message.url, message.retried, answer)
        if message.callback:
            body = _callback_body(message, answer)
            self._send_callback("callback", message.callback, body, message)
        self._after_attempt(message, answer)

    def _delivery_headers(self, message: QStashMessage) -> dict[str, str]:
        return {
            "Upstash-Message-Id": message.message_id,
            "Upstash-Retried": str(message.retried),
            "Upstash-Caller-Ip": message.caller_ip,
            "User-Agent": "Upstash-QStash",
        }

    def _after_attempt(self, message: QStashMessage, answer: _Answer) -> None:
        dead_letter = None
        with self._lock:
            if self._messages.get(message.message_id) is not message:
                return  # cancelled during the attempt: no retry
            if answer.succeeded:
                del self._messages[message.message_id]
                return
            if message.retried >= message.max_retries:
                del self._messages[message.message_id]
                dead_letter = self._dead_letter(message, answer)
            else:
                message.retried += 1
                message.state = "RETRY"
        if dead_letter is not None:
            self._on_retries_exhausted(dead_letter)
        else:
            wait = self._scaled_backoff(message.retried, answer)
            self._schedule_delivery(message, time.monotonic() + wait)

    def _scaled_backoff(self, retry_number: int, answer: _Answer) -> float:
        return backoff_seconds(retry_number, answer.header("Retry-After")) * self._time_scale

    def _dead_letter(self, message: QStashMessage, answer: _Answer) -> DeadLetter:
        dlq_id = f"{now_ms()}-{next(self._dlq_ids)}"
        entry = DeadLetter(dlq_id, message, answer.status, answer.headers, answer.body)
        self._dead_letters[dlq_id] = entry
        return entry

    def _on_retries_exhausted(self, dead_letter: DeadLetter) -> None:
        message = dead_letter.message
        logger.warning(
            "message %s failed for good; in the DLQ as %s", message.message_id, dead_letter.dlq_id
        )
        if message.failure_callback:
            answer = _Answer(
                dead_letter.response_status,
                dead_letter.response_headers,
                dead_letter.response_body,
            )
            body = _callback_body(message, answer, dlq_id=dead_letter.dlq_id)
            self._send_callback("failure_callback", message.failure_callback, body, message)

    # Callbacks: messages of their own, signed and retried.

    def _send_callback(
        self, kind: CallbackKind, url: str, body: bytes, message: QStashMessage
    ) -> None:
        forwarded = (
            message.callback_headers if kind == "callback" else message.failure_callback_headers
        )
        callback_id = new_message_id()
        self._scheduler.call_soon(
            lambda: self._attempt_callback(kind, url, body, forwarded, callback_id, retried=0)
        )

    def _attempt_callback(
        self,
        kind: CallbackKind,
        url: str,
        body: bytes,
        forwarded: dict[str, str],
        callback_id: str,
        retried: int,
    ) -> None:
        headers = {
            **forwarded,
            "Content-Type": "application/json",
            "Upstash-Message-Id": callback_id,
            "Upstash-Retried": str(retried),
            "User-Agent": "Upstash-QStash",
        }
        answer = self._signed_request("POST", url, body, headers, self._delivery_timeout)
        self._record(kind, callback_id, url, retried, answer)
        if answer.succeeded or retried >= CALLBACK_RETRIES:
            return
        due = time.monotonic() + self._scaled_backoff(retried + 1, answer)
        self._scheduler.call_at(
            due,
            lambda: self._attempt_callback(kind, url, body, forwarded, callback_id, retried + 1),
        )

    # Outgoing HTTP.

    def _signed_request(
        self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> _Answer:
        signed = {**headers, "Upstash-Signature": qstash_signature(self._signing_key, url, body)}
        try:
            response = self._client.request(
                method, url, content=body, headers=signed, timeout=timeout
            )
        except httpx.HTTPError as error:
            logger.warning("%s %s got no answer: %s", method, url, error)
            return _Answer(0, {}, b"")
        headers_lists: dict[str, list[str]] = {}
        for name, value in response.headers.multi_items():
            headers_lists.setdefault(canonical_header(name), []).append(value)
        return _Answer(response.status_code, headers_lists, response.content)

    def _record(
        self,
        kind: Literal["delivery", "callback", "failure_callback"],
        message_id: str,
        url: str,
        retried: int,
        answer: _Answer,
    ) -> None:
        logger.info(
            "%s %s to %s: status %s (attempt %d)",
            kind,
            message_id,
            url,
            answer.status or "no answer",
            retried + 1,
        )
        with self._lock:
            self._attempts.append(Attempt(kind, message_id, url, retried, answer.status))


def _read_batch_entry(entry: Any) -> tuple[str, dict[str, str], bytes, str | None]:
    """(destination, canonical headers, body, queue) of one batch entry, or PublishError."""
    if not isinstance(entry, dict) or not isinstance(entry.get("destination"), str):
        raise PublishError("each message needs a destination")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise PublishError("headers must be an object")
    body = entry.get("body")
    if body is not None and not isinstance(body, str):
        raise PublishError("body must be a string")
    queue = entry.get("queue")
    canonical = {canonical_header(str(k)): str(v) for k, v in headers.items()}
    return entry["destination"], canonical, (body or "").encode(), queue or None


def _callback_body(message: QStashMessage, answer: _Answer, dlq_id: str | None = None) -> bytes:
    """The JSON QStash posts to a callback (and, with ``dlqId``, to a failure callback)."""
    data: dict[str, Any] = {
        "status": answer.status,
        "header": answer.headers,
        "body": encode_base64(answer.body),
        "retried": message.retried,
        "maxRetries": message.max_retries,
        "sourceMessageId": message.message_id,
        "topicName": "",
        "endpointName": "",
        "url": message.url,
        "method": message.method,
        "sourceHeader": as_header_lists(message.source_headers),
        "sourceBody": encode_base64(message.body),
        "notBefore": message.not_before_ms,
        "createdAt": message.created_at_ms,
        "scheduleId": "",
        "callerIP": message.caller_ip,
    }
    if dlq_id is not None:
        data["dlqId"] = dlq_id
    return json.dumps(data).encode()


def _matches_filter(entry: DeadLetter, query: Mapping[str, str]) -> bool:
    """Whether a DLQ entry passes the ``messageId``, ``url`` and ``responseStatus`` filters."""
    wanted = {
        "messageId": entry.message.message_id,
        "url": entry.message.url,
        "responseStatus": str(entry.response_status),
    }
    return all(query[name] == actual for name, actual in wanted.items() if name in query)


def _message_not_found(message_id: str) -> Response:
    return Response.json(404, {"error": f"message {message_id} not found"})
