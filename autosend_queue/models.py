"""The app's tables: the outbox of Emails with their event log, and drip sequences.

Status changes never go through ``Email.save()``: they are conditional UPDATEs made by
``autosend_queue.states.transition``, so concurrent callbacks cannot overwrite each other.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class EmailStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    QUEUED = "queued", _("queued")
    RETRYING = "retrying", _("retrying")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


class DeliveryStatus(models.TextChoices):
    """What AutoSend's webhooks said became of an Email after AutoSend accepted it."""

    UNKNOWN = "", _("unknown")
    SENT = "sent", _("sent")
    DELIVERED = "delivered", _("delivered")
    DEFERRED = "deferred", _("deferred")
    BOUNCED = "bounced", _("bounced")
    OPENED = "opened", _("opened")
    CLICKED = "clicked", _("clicked")
    SPAM_REPORTED = "spam_reported", _("spam reported")
    UNSUBSCRIBED = "unsubscribed", _("unsubscribed")


class EmailKind(models.TextChoices):
    SINGLE = "single", _("single (/mails/send)")
    BULK = "bulk", _("bulk (/mails/bulk)")


class Sequence(models.Model):
    """A drip series, such as an onboarding sequence, defined by staff."""

    class Trigger(models.TextChoices):
        SIGNUP = "signup", _("on signup")
        MANUAL = "manual", _("manual")

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    is_active = models.BooleanField(_("active"), default=True)
    from_email = models.CharField(
        _("from"), max_length=320, blank=True, help_text=_("Defaults to DEFAULT_FROM.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SequenceStep(models.Model):
    """One email of a sequence, sent ``delay`` after enrollment."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=1)
    delay = models.DurationField(default=timedelta(0), help_text=_("Time after enrollment."))
    template_id = models.CharField(max_length=100, blank=True)
    dynamic_data = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "position"], name="autosend_step_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sequence} #{self.position}"

    def clean(self) -> None:
        """Content is an AutoSend template, or a subject with html and/or text: not both."""
        errors: dict[str, ValidationError] = {}
        if self.delay is not None and self.delay < timedelta(0):
            errors["delay"] = ValidationError(_("A delay cannot be negative."), code="min_value")
        if self.template_id:
            for field in ("html", "text"):
                if getattr(self, field):
                    errors[field] = ValidationError(
                        _("Leave empty when a template id is given: the template is the content."),
                        code="exclusive",
                    )
        elif not self.subject:
            errors["subject"] = ValidationError(
                _("A subject is required without a template id."), code="required"
            )
        elif not (self.html or self.text):
            errors["html"] = ValidationError(
                _("Give html or text (or a template id instead)."), code="required"
            )
        if not isinstance(self.dynamic_data, dict):
            errors["dynamic_data"] = ValidationError(
                _('Must be a JSON object, such as {"plan": "free"}.'), code="type"
            )
        if errors:
            raise ValidationError(errors)


class Enrollment(models.Model):
    """A user's place in a sequence."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        COMPLETED = "completed", _("completed")
        CANCELLED = "cancelled", _("cancelled")

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="autosend_enrollments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    enrolled_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-enrolled_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "user"], name="autosend_enrollment_unique_user"
            )
        ]
        indexes = [models.Index(fields=["sequence", "status"], name="autosend_enr_seq_status")]

    def __str__(self) -> str:
        return f"{self.user} in {self.sequence}"


class Email(models.Model):
    """One AutoSend request (a single send or a bulk chunk of up to 100) and its history."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=EmailKind.choices, default=EmailKind.SINGLE)
    status = models.CharField(
        max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    delivery_status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.UNKNOWN, blank=True
    )
    payload = models.JSONField(help_text=_("The AutoSend request body. Never holds the API key."))
    to_email = models.CharField(_("recipient"), max_length=254)
    recipient_count = models.PositiveIntegerField(default=1)
    subject = models.CharField(max_length=998, blank=True)
    template_id = models.CharField(max_length=100, blank=True)
    scheduled_at = models.DateTimeField(help_text=_("When it is to be sent (an instant)."))
    published_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text=_("Delivery attempts to AutoSend."))
    publish_attempts = models.PositiveIntegerField(
        default=0, help_text=_("Failed attempts to hand the Email to QStash.")
    )
    last_error = models.TextField(blank=True)
    qstash_message_id = models.CharField(max_length=100, blank=True)
    dlq_id = models.CharField(max_length=100, blank=True)
    autosend_email_id = models.CharField(max_length=100, blank=True)
    autosend_batch_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="autosend_emails",
    )
    sequence = models.ForeignKey(
        Sequence, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    sequence_step = models.ForeignKey(
        SequenceStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails"
    )
    resent_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="resends"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("resend_email", "Can resend emails"),
            ("cancel_email", "Can cancel emails"),
        ]
        indexes = [
            models.Index(fields=["status", "scheduled_at"], name="autosend_email_due"),
            models.Index(fields=["status", "-id"], name="autosend_email_status"),
            models.Index(fields=["kind", "-id"], name="autosend_email_kind"),
            models.Index(fields=["delivery_status", "-id"], name="autosend_email_delivery"),
            models.Index(fields=["sequence", "-id"], name="autosend_email_sequence"),
            models.Index(fields=["to_email", "-id"], name="autosend_email_to"),
            models.Index(fields=["created_at", "status"], name="autosend_email_created"),
            models.Index(fields=["qstash_message_id"], name="autosend_email_qstash_id"),
            models.Index(fields=["autosend_email_id"], name="autosend_email_autosend_id"),
            models.Index(fields=["autosend_batch_id"], name="autosend_email_batch_id"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or self.template_id or 'email'} to {self.to_email}"


class EmailRecipient(models.Model):
    """Every address an Email goes to (to, cc, bcc, bulk recipients), for search and webhooks."""

    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(max_length=254)
    delivery_status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.UNKNOWN, blank=True
    )

    class Meta:
        indexes = [models.Index(fields=["address"], name="autosend_recipient_address")]

    def __str__(self) -> str:
        return self.address


class EmailEvent(models.Model):
    """An append-only record of something that happened to an Email."""

    class Kind(models.TextChoices):
        CREATED = "created", _("created")
        PUBLISHED = "published", _("published to QStash")
        PUBLISH_FAILED = "publish_failed", _("publish failed")
        REJECTED = "rejected", _("rejected")
        ATTEMPT = "attempt", _("delivery attempt")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        RESENT = "resent", _("resent")
        WEBHOOK = "webhook", _("AutoSend webhook")
        IGNORED = "ignored", _("ignored (out of order)")

    email = models.ForeignKey(Email, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    data = models.JSONField(default=dict, blank=True)
    delivery_id = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        help_text=_("X-Webhook-Delivery-Id of the AutoSend webhook, for idempotency."),
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("EmailEvent is append-only: events are never changed.")
        super().save(*args, **kwargs)
