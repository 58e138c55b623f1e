"""Thin views for QStash callbacks and AutoSend webhooks."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse


def callback(request: HttpRequest, email_uuid: UUID) -> HttpResponse:
    return HttpResponse(status=501)


def failure_callback(request: HttpRequest, email_uuid: UUID) -> HttpResponse:
    return HttpResponse(status=501)


def webhook(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=501)
