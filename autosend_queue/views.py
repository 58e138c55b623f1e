"""Thin views for QStash callbacks and AutoSend webhooks.

``verified_json_view(verify)`` does everything such an endpoint needs before the view itself:
POST only, a bounded body, signature verification on the raw bytes, JSON parsing. The views then
hand the document to the module that applies it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from autosend_queue import callbacks, signing, webhooks
from autosend_queue.conf import app_settings
from autosend_queue.exceptions import InvalidPayload, SignatureError

logger = logging.getLogger(__name__)

Verifier = Callable[[HttpRequest, bytes], object]
JsonView = Callable[..., HttpResponse]


class _BadRequest(Exception):
    """A request refused before verification: ``status`` is the answer's HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def verified_json_view(verify: Verifier) -> Callable[[JsonView], Callable[..., HttpResponse]]:
    """Turn ``view(request, document, **url_kwargs)`` into a CSRF-exempt, verified endpoint.

    In this order: a method other than POST answers 405; a ``Content-Length`` over
    ``MAX_BODY_SIZE`` answers 413 before anything is read, and at most ``MAX_BODY_SIZE + 1`` bytes
    are ever read (413 beyond); ``verify(request, raw_body)`` runs on the raw bytes and a
    ``SignatureError`` it raises answers 401 and logs its ``check``; a body that is not a JSON
    object answers 400. The view gets the parsed object; an ``InvalidPayload`` it raises answers
    400 naming the field and rule. Nothing the view does runs unless all of this passed.
    """

    def decorator(view: JsonView) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            try:
                raw_body = read_bounded_body(request)
                verify(request, raw_body)
                document = parse_json_object(raw_body)
            except _BadRequest as error:
                return _error(error.status, str(error))
            except SignatureError as error:
                logger.warning(
                    "autosend_queue: %s refused, check %r failed: %s",
                    request.path,
                    error.check,
                    error,
                )
                return _error(401, "signature verification failed")
            try:
                return view(request, document, *args, **kwargs)
            except InvalidPayload as error:
                return _error(400, str(error), field=error.field, rule=error.rule)

        return endpoint

    return decorator


def read_bounded_body(request: HttpRequest) -> bytes:
    """The raw body, never reading more than ``MAX_BODY_SIZE + 1`` bytes."""
    limit = app_settings.MAX_BODY_SIZE
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        raise _BadRequest(400, "Content-Length must be a number of bytes")
    if int(declared) > limit:
        raise _BadRequest(413, f"the body is larger than {limit} bytes")
    raw_body = request.read(limit + 1)
    if len(raw_body) > limit:
        raise _BadRequest(413, f"the body is larger than {limit} bytes")
    return raw_body


def parse_json_object(raw_body: bytes) -> dict[str, Any]:
    """The body as a JSON object; NaN and Infinity are refused (PostgreSQL cannot store them)."""
    try:
        document = json.loads(raw_body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise _BadRequest(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise _BadRequest(400, "the body is not a JSON object")
    return document


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _error(status: int, message: str, **details: str) -> JsonResponse:
    return JsonResponse({"error": message, **details}, status=status)


@verified_json_view(signing.verify_qstash_request)
def callback(request: HttpRequest, document: dict[str, Any], email_uuid: UUID) -> HttpResponse:
    """QStash's call after each delivery attempt."""
    outcome = callbacks.apply_callback(email_uuid, document, failure=False)
    return JsonResponse({"outcome": outcome})


@verified_json_view(signing.verify_qstash_request)
def failure_callback(
    request: HttpRequest, document: dict[str, Any], email_uuid: UUID
) -> HttpResponse:
    """QStash's call once the retries are exhausted (the message is in its DLQ)."""
    outcome = callbacks.apply_callback(email_uuid, document, failure=True)
    return JsonResponse({"outcome": outcome})


@verified_json_view(webhooks.verify_autosend_request)
def webhook(request: HttpRequest, document: dict[str, Any]) -> HttpResponse:
    """AutoSend's delivery webhooks, recorded once per ``X-Webhook-Delivery-Id``."""
    event = webhooks.parse_event(document, request.headers)
    return JsonResponse({"outcome": webhooks.record(event)})
