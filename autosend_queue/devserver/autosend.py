"""The AutoSend sandbox: ``/v1/mails/send`` and ``/v1/mails/bulk`` with AutoSend's rules and
answers, an inbox page, optional webhooks, and fault switches for tests and demos.

Nothing is ever sent: accepted emails are kept in memory and shown at ``/``.
"""

import hmac
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from .defaults import AUTOSEND_KEY_PREFIX, DEFAULT_RATE_LIMIT
from .httpserver import Request, Response
from .inbox import render_email, render_inbox, render_not_found
from .mailbox import Mailbox, ReceivedEmail
from .scheduler import Scheduler
from .validation import FieldError, validate_bulk, validate_send
from .webhooks import WebhookEvent, WebhookSender

RATE_LIMIT_WINDOW_SECONDS = 1.0
WEBHOOK_EVENTS = ("email.sent", "email.delivered")


@dataclass
class Faults:
    """What the sandbox is told to get wrong: ``fail_next`` sends answer 500, ``unauthorized``
    answers 401 to every send, ``slow_seconds`` delays every answer."""

    fail_next: int = 0
    unauthorized: bool = False
    slow_seconds: float = 0.0


@dataclass(frozen=True)
class _RateDecision:
    allowed: bool
    remaining: int
    reset_in: float

    def headers(self, limit: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(time.time() + self.reset_in)),
        }


class _RateLimiter:
    """At most ``limit`` requests per key in any one-second window."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}

    def forget(self) -> None:
        with self._lock:
            self._recent.clear()

    def check(self, key: str) -> _RateDecision:
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - RATE_LIMIT_WINDOW_SECONDS:
                recent.popleft()
            allowed = len(recent) < self.limit
            if allowed:
                recent.append(now)
            reset_in = recent[0] + RATE_LIMIT_WINDOW_SECONDS - now
            return _RateDecision(allowed, self.limit - len(recent), reset_in)


class AutoSendSandbox:
    """The AutoSend side of the devserver; `handle` is its HTTP entry point."""

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        client: httpx.Client,
        time_scale: float = 1.0,
        api_key: str | None = None,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._rate_limiter = _RateLimiter(rate_limit) if rate_limit > 0 else None
        self._webhooks = WebhookSender(scheduler, client, time_scale)
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._mailbox = Mailbox()
        self._faults = Faults()
        self._faults_lock = threading.Lock()
        self._closing = threading.Event()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("POST", re.compile(r"/v1/mails/send/?"), self._send),
            ("POST", re.compile(r"/v1/mails/bulk/?"), self._bulk),
            ("GET", re.compile(r"/"), self._inbox),
            ("GET", re.compile(r"/emails/(?P<email_id>[^/]+)"), self._email_page),
            ("GET", re.compile(r"/_sandbox/emails/?"), self._emails_json),
            ("DELETE", re.compile(r"/_sandbox/emails/?"), self._clear_emails),
            ("GET", re.compile(r"/_sandbox/faults/?"), self._faults_json),
            ("POST", re.compile(r"/_sandbox/faults/?"), self._set_faults),
        ]

    # Python API, for tests and the demo.

    @property
    def emails(self) -> list[ReceivedEmail]:
        """The accepted emails, oldest first."""
        return self._mailbox.all()

    def clear(self) -> None:
        """Forget the received emails."""
        self._mailbox.clear()

    def reset(self) -> None:
        """Forget the received emails, switch every fault off and start the rate limit afresh."""
        self.clear()
        self.reset_faults()
        if self._rate_limiter is not None:
            self._rate_limiter.forget()

    @property
    def faults(self) -> Faults:
        with self._faults_lock:
            return Faults(**asdict(self._faults))

    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` sends with 500."""
        with self._faults_lock:
            self._faults.fail_next = count

    def set_unauthorized(self, unauthorized: bool = True) -> None:
        """Answer every send with 401 until switched off."""
        with self._faults_lock:
            self._faults.unauthorized = unauthorized

    def set_slow(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each send (0 to stop)."""
        with self._faults_lock:
            self._faults.slow_seconds = seconds

    def reset_faults(self) -> None:
        with self._faults_lock:
            self._faults = Faults()

    def configure_webhook(self, url: str | None, secret: str | None) -> None:
        """Post ``email.sent`` and ``email.delivered`` to ``url`` after each accepted send."""
        self._webhook_url, self._webhook_secret = url, secret

    def close(self) -> None:
        """Cut short the answers held back by ``slow_seconds``, so the server can stop."""
        self._closing.set()

    # HTTP entry point.

    def handle(self, request: Request) -> Response:
        path = request.path
        for method, pattern, endpoint in self._routes:
            match = pattern.fullmatch(path)
            if request.method == method and match:
                return endpoint(request, **match.groupdict())
        return _error(404, "NOT_FOUND", f"Not found: {request.method} {path}")

    def _send(self, request: Request) -> Response:
        return self._api_call(request, "send")

    def _bulk(self, request: Request) -> Response:
        return self._api_call(request, "bulk")

    def _api_call(self, request: Request, kind: Literal["send", "bulk"]) -> Response:
        """Apply, in order: slowness, authentication, the rate limit, failures, validation."""
        faults = self.faults
        if faults.slow_seconds:
            self._closing.wait(faults.slow_seconds)
        key = request.bearer_token()
        if faults.unauthorized or key is None or not self._key_accepted(key):
            return _error(401, "UNAUTHORIZED", "Invalid or missing API key")
        rate_headers: dict[str, str] = {}
        if self._rate_limiter is not None:
            decision = self._rate_limiter.check(key)
            rate_headers = decision.headers(self._rate_limiter.limit)
            if not decision.allowed:
                return _rate_limited(self._rate_limiter.limit, decision, rate_headers)
        if self._take_failure():
            return _error(500, "INTERNAL_ERROR", "Simulated failure (sandbox fault switch)")
        response = self._accept(request, kind, key)
        response.headers.update(rate_headers)
        return response

    def _key_accepted(self, key: str) -> bool:
        if self._api_key is None:
            return key.startswith(AUTOSEND_KEY_PREFIX)
        return hmac.compare_digest(key.encode(), self._api_key.encode())

    def _take_failure(self) -> bool:
        with self._faults_lock:
            if self._faults.fail_next <= 0:
                return False
            self._faults.fail_next -= 1
            return True

    def _accept(self, request: Request, kind: Literal["send", "bulk"], key: str) -> Response:
        try:
            payload = request.json()
        except ValueError:
            return _validation_failed([FieldError("body", "Request body must be valid JSON")])
        errors = validate_send(payload) if kind == "send" else validate_bulk(payload)
        if errors:
            return _validation_failed(errors)
        if kind == "send":
            email = ReceivedEmail(secrets.token_hex(12), "send", payload, key)
            data: dict[str, Any] = {
                "emailId": email.id,
                "message": "Email queued successfully.",
                "totalRecipients": 1,
            }
        else:
            email = ReceivedEmail(str(uuid.uuid4()), "bulk", payload, key)
            total = len(email.recipients)
            data = {
                "batchId": email.id,
                "totalRecipients": total,
                "successCount": total,
                "failedCount": 0,
            }
        self._mailbox.add(email)
        self._post_webhooks(email)
        return Response.json(200, {"success": True, "data": data})

    def _post_webhooks(self, email: ReceivedEmail) -> None:
        url, secret = self._webhook_url, self._webhook_secret
        if not url or not secret:
            return
        for recipient in email.recipients:
            data = _webhook_data(email, recipient)
            events = [WebhookEvent.create(event_type, data) for event_type in WEBHOOK_EVENTS]
            self._webhooks.send_in_order(url, secret, events)

    # Pages and controls.

    def _inbox(self, request: Request) -> Response:
        return Response.html(200, render_inbox(self.emails))

    def _email_page(self, request: Request, email_id: str) -> Response:
        email = self._mailbox.find(email_id)
        if email is None:
            return Response.html(404, render_not_found(email_id))
        return Response.html(200, render_email(email))

    def _emails_json(self, request: Request) -> Response:
        return Response.json(200, [email.to_api() for email in self.emails])

    def _clear_emails(self, request: Request) -> Response:
        self.clear()
        return Response.json(200, [])

    def _faults_json(self, request: Request) -> Response:
        return Response.json(200, asdict(self.faults))

    def _set_faults(self, request: Request) -> Response:
        """Replace the fault switches: fields left out are switched off, ``{}`` resets them all."""
        try:
            wanted = request.json()
            faults = Faults(
                fail_next=int(wanted.get("fail_next", 0)),
                unauthorized=bool(wanted.get("unauthorized", False)),
                slow_seconds=float(wanted.get("slow_seconds", 0.0)),
            )
        except (ValueError, TypeError, AttributeError):
            return Response.json(
                400, {"error": "expected {fail_next?, unauthorized?, slow_seconds?}"}
            )
        with self._faults_lock:
            self._faults = faults
        return Response.json(200, asdict(faults))


def _webhook_data(email: ReceivedEmail, recipient: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of a webhook event about one recipient of ``email``."""
    data: dict[str, Any] = {
        # A bulk answer names no email per recipient; the sandbox makes one up for its events.
        "emailId": email.id if email.kind == "send" else secrets.token_hex(12),
        "from": email.payload["from"],
        "to": {"email": recipient["email"], "name": recipient.get("name")},
        "test": True,
    }
    if email.kind == "bulk":
        data["batchId"] = email.id
    if email.subject is not None:
        data["subject"] = email.subject
    if email.template_id is not None:
        data["templateId"] = email.template_id
    return data


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    return Response.json(
        status, {"success": False, "error": {"message": message, "code": code}, **extra}
    )


def _validation_failed(errors: list[FieldError]) -> Response:
    body = {
        "success": False,
        "error": {
            "message": "Validation failed",
            "code": "VALIDATION_FAILED",
            "details": [error.to_api() for error in errors],
        },
    }
    return Response.json(400, body)


def _rate_limited(limit: int, decision: _RateDecision, headers: dict[str, str]) -> Response:
    retry_after = max(1, math.ceil(decision.reset_in))
    response = _error(
        429,
        "RATE_LIMITED",
        f"Too many requests: at most {limit} per second per API key",
        retryAfter=retry_after,
    )
    response.headers.update(headers)
    response.headers["Retry-After"] = str(retry_after)
    return response
