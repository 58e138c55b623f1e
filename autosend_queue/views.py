"""Thin views for QStash callbacks and AutoSend webhooks."""

from __future__ import annotations

import logging
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from autosend_queue import webhooks
from autosend_queue.conf import app_settings
from autosend_queue.exceptions import SignatureError

logger = logging.getLogger(__name__)


def callback(request: HttpRequest, email_uuid: UUID) -> HttpResponse:
    return HttpResponse(status=501)


def failure_callback(request: HttpRequest, email_uuid: UUID) -> HttpResponse:
    return HttpResponse(status=501)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """AutoSend's delivery webhooks: size-limited, HMAC-verified, recorded once per delivery id."""
    try:
        body = webhooks.read_body(request, app_settings.MAX_BODY_SIZE)
        webhooks.verify_signature(body, request.headers.get(webhooks.SIGNATURE_HEADER))
        event = webhooks.parse_event(body, request.headers)
    except webhooks.BodyTooLarge:
        return HttpResponse(status=413)
    except SignatureError as error:
        logger.warning("autosend_queue: AutoSend webhook refused (%s)", error.check)
        return HttpResponse(status=401)
    except webhooks.MalformedWebhook as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"outcome": webhooks.record(event)})
