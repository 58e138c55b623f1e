"""Drip sequences in the admin.

A sequence's change page edits its steps inline (ordered by position, delays shown as people say
them), previews the timeline a user enrolled now would get, and counts its enrollments by status
in one aggregate query. Enrollments are read-only history; cancelling them (or all of a
sequence's remaining emails) is a confirmed POST that needs the ``cancel_email`` permission, the
same one that lets staff cancel Emails, because that is what it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from autosend_queue import sequences, states
from autosend_queue.admin.confirmation import is_confirmed, resubmitted_selection
from autosend_queue.durations import describe_delay
from autosend_queue.models import Email, Enrollment, Sequence, SequenceStep

CONFIRMATION_TEMPLATE = "admin/autosend_queue/sequence/cancel_confirmation.html"
CONFIRMATION_LIST_SIZE = 50
STEP_FIELDS = ("template_id", "dynamic_data", "subject", "html", "text", "is_active")


@dataclass(frozen=True)
class TimelineEntry:
    step: SequenceStep
    when: str
    at: datetime
    content: str


def timeline(sequence: Sequence, now: datetime | None = None) -> list[TimelineEntry]:
    """What a user enrolled at ``now`` would get, and when: one query."""
    enrolled_at = now or timezone.now()
    return [
        TimelineEntry(step, describe_delay(step.delay), enrolled_at + step.delay, _content(step))
        for step in sequence.steps.filter(is_active=True).order_by("position", "pk")
    ]


def enrollment_counts(sequence: Sequence) -> dict[str, int]:
    """The sequence's enrollments by status, in one aggregate query."""
    counts = Enrollment.objects.filter(sequence=sequence).aggregate(
        **{status: Count("pk", filter=Q(status=status)) for status in Enrollment.Status.values}
    )
    return {status: counts[status] or 0 for status in Enrollment.Status.values}


def _content(step: SequenceStep) -> str:
    if step.template_id:
        return gettext("template %(id)s") % {"id": step.template_id}
    return step.subject


class SequenceStepForm(forms.ModelForm):
    class Meta:
        model = SequenceStep
        fields = ("position", "delay", *STEP_FIELDS)
        help_texts = {"delay": _("Days and time after enrollment: “2 03:00:00” is 2 days 3 hours.")}
        widgets = {
            "position": forms.NumberInput(attrs={"style": "width: 4em"}),
            "delay": forms.TextInput(attrs={"size": 10}),
            "template_id": forms.TextInput(attrs={"size": 10}),
            "subject": forms.TextInput(attrs={"size": 20}),
            "dynamic_data": forms.Textarea(attrs={"rows": 2, "cols": 14}),
            "html": forms.Textarea(attrs={"rows": 2, "cols": 24}),
            "text": forms.Textarea(attrs={"rows": 2, "cols": 16}),
        }


class SequenceStepInline(admin.TabularInline):
    model = SequenceStep
    form = SequenceStepForm
    ordering = ("position",)
    fields = ("position", "delay", "sent", *STEP_FIELDS)
    readonly_fields = ("sent",)
    extra = 1

    @admin.display(description=_("sent"))
    def sent(self, step: SequenceStep) -> str:
        return describe_delay(step.delay)


class CancellingAdmin(admin.ModelAdmin):
    """A ModelAdmin with the confirmed "cancel remaining emails" action of both admins here."""

    def has_cancel_email_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("autosend_queue.cancel_email"))

    def cancel_confirmed(
        self, request: HttpRequest, chosen: QuerySet[Any], enrollments: QuerySet[Enrollment]
    ) -> TemplateResponse | None:
        """Cancel on the confirmation page's POST; before it, answer that page."""
        if is_confirmed(request):
            cancelled = sequences.cancel_enrollments(enrollments)
            self.message_user(request, _cancelled_message(cancelled), messages.SUCCESS)
            return None
        return _confirmation(self, request, chosen, enrollments)


def _cancelled_message(cancelled: sequences.Cancelled) -> str:
    return gettext("Cancelled %(enrollments)s and %(emails)s.") % {
        "enrollments": ngettext(
            "%(count)d enrollment", "%(count)d enrollments", cancelled.enrollments
        )
        % {"count": cancelled.enrollments},
        "emails": ngettext("%(count)d email", "%(count)d emails", cancelled.emails)
        % {"count": cancelled.emails},
    }


def _confirmation(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    chosen: QuerySet[Any],
    enrollments: QuerySet[Enrollment],
) -> TemplateResponse:
    opts = model_admin.model._meta
    shown = list(chosen[:CONFIRMATION_LIST_SIZE])
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Are you sure?"),
        "opts": opts,
        "objects": shown,
        "more": chosen.count() - len(shown),
        "active_enrollments": enrollments.filter(status=Enrollment.Status.ACTIVE).count(),
        "remaining_emails": Email.objects.filter(
            enrollment__in=enrollments.values("pk"), status__in=states.CANCELLABLE
        ).count(),
        **resubmitted_selection(request),
    }
    return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)


@admin.register(Sequence)
class SequenceAdmin(CancellingAdmin):
    list_display = ("name", "slug", "trigger", "is_active", "created_at")
    list_filter = ("trigger", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [SequenceStepInline]
    readonly_fields = ("enrollments",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "trigger", "is_active", "from_email")}),
        (_("Enrollments"), {"fields": ("enrollments",)}),
    )
    actions = ["cancel_remaining_emails"]

    def get_fieldsets(self, request: HttpRequest, obj: Sequence | None = None) -> Any:
        """The add page has nobody enrolled yet to count."""
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:1]

    @admin.display(description=_("enrollments by status"))
    def enrollments(self, sequence: Sequence) -> SafeString:
        changelist = reverse(f"{self.admin_site.name}:autosend_queue_enrollment_changelist")
        links = (
            (
                f"{changelist}?sequence__id__exact={sequence.pk}&status__exact={status}",
                count,
                Enrollment.Status(status).label,
            )
            for status, count in enrollment_counts(sequence).items()
        )
        return format_html_join(" · ", '<a href="{}">{} {}</a>', links)

    @admin.action(
        description=_("Cancel the remaining emails of selected sequences"),
        permissions=["cancel_email"],
    )
    def cancel_remaining_emails(
        self, request: HttpRequest, queryset: QuerySet[Sequence]
    ) -> TemplateResponse | None:
        enrollments = Enrollment.objects.filter(sequence__in=queryset.values("pk"))
        return self.cancel_confirmed(request, queryset, enrollments)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Sequence | None = None,
    ) -> Any:
        if obj is not None and obj.pk is not None:
            context["timeline"] = timeline(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


class EnrollmentEmailInline(admin.TabularInline):
    """The enrollment's Emails, read-only: what was sent, what is still to come."""

    model = Email
    fields = readonly_fields = ("subject", "template_id", "scheduled_at", "status", "sent_at")
    ordering = ("scheduled_at", "pk")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Enrollment)
class EnrollmentAdmin(CancellingAdmin):
    list_display = ("user", "sequence", "status", "enrolled_at", "updated_at")
    list_filter = ("status", "sequence", "enrolled_at")
    list_select_related = ("user", "sequence")
    fields = readonly_fields = ("sequence", "user", "status", "enrolled_at", "updated_at")
    inlines = [EnrollmentEmailInline]
    actions = ["cancel_selected"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        user_model = get_user_model()
        return [f"user__{user_model.USERNAME_FIELD}", f"user__{user_model.get_email_field_name()}"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Enrollments are made by ``enroll()``, which writes their Emails too."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """History is read-only: the cancel action is how staff act on it."""
        return False

    @admin.action(description=_("Cancel selected enrollments"), permissions=["cancel_email"])
    def cancel_selected(
        self, request: HttpRequest, queryset: QuerySet[Enrollment]
    ) -> TemplateResponse | None:
        return self.cancel_confirmed(request, queryset, queryset)
