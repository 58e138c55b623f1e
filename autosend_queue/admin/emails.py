"""The Email history in the admin: a changelist that stays fast at millions of rows, a read-only
change page with the request body, a safe HTML preview and the event timeline, and the staff
actions (resend, cancel, publish now), each a confirmed POST behind its own permission.

Every action goes through ``autosend_queue.outbox``: this module never changes a status itself.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from autosend_queue import outbox, states
from autosend_queue.admin.confirmation import is_confirmed, resubmitted_selection
from autosend_queue.conf import app_settings
from autosend_queue.models import Email, EmailEvent, EmailRecipient, EmailStatus

COUNT_CAP = 10_000
CONFIRMATION_LIST_SIZE = 100
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$", re.IGNORECASE)
AUTOSEND_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$", re.IGNORECASE)

# A symbol per status, so the badge reads the same without its colour (and in a screen reader,
# which gets the text label).
STATUS_SYMBOLS: dict[str, str] = {
    EmailStatus.PENDING: "○",
    EmailStatus.QUEUED: "◔",
    EmailStatus.RETRYING: "↻",
    EmailStatus.SENT: "✓",
    EmailStatus.FAILED: "✗",
    EmailStatus.CANCELLED: "⊘",
}


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows: ``SELECT COUNT(*) FROM (... LIMIT cap + 1)``.

    The count reads the same index as the page, in the same order, and stops after the cap, so
    its cost does not grow with the table, filtered or not. It is exact below the cap; above it,
    ``count_is_capped`` is true and the pages stop at the cap, which also bounds the deepest
    OFFSET a page can ask for.
    """

    @cached_property
    def _capped_count(self) -> int:
        queryset = cast("QuerySet[Email]", self.object_list)
        return queryset[: COUNT_CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._capped_count, COUNT_CAP)

    @property
    def count_is_capped(self) -> bool:
        return self._capped_count > COUNT_CAP


class EmailChangeList(ChangeList):
    """Says nothing rather than a wrong number: above the cap, the search bar's "N results"
    (which it shows whenever the full count is unknown) is left out."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        if self.paginator.count_is_capped:
            self.full_result_count = self.result_count


def search_filter(term: str) -> Q:
    """What a search term matches, chosen by its shape so that each kind uses an index.

    An address (it has ``@``) matches any recipient (to, cc, bcc, bulk) through the indexed
    EmailRecipient.address; a UUID is an Email's own id or an AutoSend batch id; ``msg_...`` is a
    QStash message id; 24 hex digits are an AutoSend email id. Anything else is looked for in the
    subject, which scans the table: there is no index for a substring.
    """
    if "@" in term:
        return Q(id__in=EmailRecipient.objects.filter(address=term.lower()).values("email_id"))
    if UUID_PATTERN.match(term):
        parsed = uuid.UUID(term)
        return Q(uuid=parsed) | Q(autosend_batch_id=str(parsed))
    if term.startswith("msg_"):
        return Q(qstash_message_id=term)
    if AUTOSEND_ID_PATTERN.match(term):
        return Q(autosend_email_id=term)
    return Q(subject__icontains=term)


def status_badge(email: Email) -> SafeString:
    return format_html(
        '<span class="autosend-status autosend-status-{}">'
        '<span aria-hidden="true">{}</span> {}</span>',
        email.status,
        STATUS_SYMBOLS.get(email.status, ""),
        email.get_status_display(),
    )


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    last_day: int
    last_week: int


def recent_status_counts() -> list[StatusCount]:
    """Emails created in the last 24 hours and 7 days, per status: one aggregate query over the
    (created_at, status) index, whose cost follows the week's volume, not the table's."""
    now = timezone.now()
    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    aggregates: dict[str, Count] = {}
    for status in EmailStatus:
        aggregates[f"{status}_day"] = Count("id", filter=Q(status=status, created_at__gte=day_ago))
        aggregates[f"{status}_week"] = Count("id", filter=Q(status=status))
    counts = Email.objects.filter(created_at__gte=week_ago).aggregate(**aggregates)
    return [
        StatusCount(status, str(status.label), counts[f"{status}_day"], counts[f"{status}_week"])
        for status in EmailStatus
    ]


@dataclass(frozen=True)
class Selection:
    """What the emails selected for an action are: one aggregate query, for the confirmation."""

    total: int
    cancellable: int
    due: int
    beyond_max_delay: int

    @classmethod
    def of(cls, emails: QuerySet[Email]) -> Selection:
        horizon = timezone.now() + app_settings.max_delay
        pending = Q(status=EmailStatus.PENDING)
        counts = emails.order_by().aggregate(
            total=Count("id"),
            cancellable=Count("id", filter=Q(status__in=states.CANCELLABLE)),
            due=Count("id", filter=pending & Q(scheduled_at__lte=horizon)),
            beyond_max_delay=Count("id", filter=pending & Q(scheduled_at__gt=horizon)),
        )
        return cls(**counts)


def event_summary(event: EmailEvent) -> str:
    """One readable line for an event's data; webhooks as what AutoSend said happened."""
    if event.kind == EmailEvent.Kind.WEBHOOK:
        return webhook_summary(event.data)
    return ", ".join(f"{key}: {value}" for key, value in event.data.items())


def webhook_summary(payload: dict[str, Any]) -> str:
    """``email.bounced`` with ``{"to": {"email": ...}, "bounceType": "Permanent"}`` becomes
    "Bounced (Permanent) — ada@example.com". Both AutoSend body shapes (``type``/``event``) work."""
    event_type = str(payload.get("type") or payload.get("event") or "webhook")
    details: dict[str, Any] = payload["data"] if isinstance(payload.get("data"), dict) else payload
    label = event_type.removeprefix("email.").replace("_", " ").capitalize()
    reason = details.get("bounceType") or details.get("reason")
    link = details.get("url") or details.get("link")
    to = details.get("to")
    recipient = to.get("email") if isinstance(to, dict) else to
    parts = [f"{label} ({reason})" if reason else label]
    parts += [str(value) for value in (recipient, link) if value]
    return " — ".join(parts)


class EmailEventInline(admin.TabularInline):
    """The timeline: every event of the Email, oldest first, read-only."""

    model = EmailEvent
    fields = readonly_fields = ("kind", "created_at", "summary")
    ordering = ("id",)
    extra = 0
    can_delete = False
    verbose_name = _("event")
    verbose_name_plural = _("timeline")

    @admin.display(description=_("details"))
    def summary(self, event: EmailEvent) -> str:
        return event_summary(event)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Whoever may see the Email sees its timeline (events have no admin of their own)."""
        opts = self.parent_model._meta
        codenames = (get_permission_codename(action, opts) for action in ("view", "change"))
        return any(request.user.has_perm(f"{opts.app_label}.{name}") for name in codenames)


@admin.register(Email)
class EmailAdmin(admin.ModelAdmin):
    """Every Email, newest first; read-only, with resend, cancel and publish-now actions."""

    list_display = (
        "recipient",
        "subject_or_template",
        "sequence_and_step",
        "status_badge",
        "delivery",
        "scheduled_at",
        "sent_at",
        "attempts",
    )
    list_filter = ("status", "kind", "sequence", "delivery_status")
    list_select_related = ("sequence", "sequence_step")
    search_fields = ("to_email",)  # Shows the search box; get_search_results does the work.
    search_help_text = _(
        "An exact address, an email's UUID, a QStash id (msg_...), an AutoSend email or batch id, "
        "or words of the subject."
    )
    ordering = ("-id",)
    sortable_by = ()  # Other orders would sort the whole table.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # A count per filter choice would scan the table.
    paginator = CappedCountPaginator
    actions = ("resend_selected", "cancel_selected", "publish_selected")
    inlines = (EmailEventInline,)
    fieldsets = (
        (None, {"fields": ("status_badge", "delivery", "kind", "uuid", "recipients_list")}),
        (_("Content"), {"fields": ("subject", "template_id", "request_body", "html_preview")}),
        (
            _("Timing"),
            {"fields": ("scheduled_at", "published_at", "sent_at", "created_at", "updated_at")},
        ),
        (
            _("Delivery"),
            {
                "fields": (
                    "attempts",
                    "publish_attempts",
                    "last_error",
                    "qstash_message_id",
                    "dlq_id",
                    "autosend_email_id",
                    "autosend_batch_id",
                    "idempotency_key",
                )
            },
        ),
        (
            _("Origin"),
            {"fields": ("user", "sequence", "sequence_step", "enrollment", "resend_chain")},
        ),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    @admin.display(description=_("recipient"))
    def recipient(self, email: Email) -> str:
        others = email.recipient_count - 1
        return f"{email.to_email} (+{others})" if others > 0 else email.to_email

    @admin.display(description=_("subject or template"))
    def subject_or_template(self, email: Email) -> str:
        return email.subject or (f"template {email.template_id}" if email.template_id else "")

    @admin.display(description=_("sequence and step"))
    def sequence_and_step(self, email: Email) -> str:
        if email.sequence is None:
            return ""
        if email.sequence_step is None:
            return email.sequence.name
        return f"{email.sequence.name} · step {email.sequence_step.position}"

    @admin.display(description=_("status"))
    def status_badge(self, email: Email) -> SafeString:
        return status_badge(email)

    @admin.display(description=_("delivery"))
    def delivery(self, email: Email) -> str:
        return str(email.get_delivery_status_display()) if email.delivery_status else ""

    @admin.display(description=_("recipients"))
    def recipients_list(self, email: Email) -> str:
        return ", ".join(email.recipients.order_by("id").values_list("address", flat=True))

    @admin.display(description=_("AutoSend request body"))
    def request_body(self, email: Email) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(email.payload, indent=2, ensure_ascii=False))

    @admin.display(description=_("HTML preview"))
    def html_preview(self, email: Email) -> SafeString | str:
        """The body in an iframe with every sandbox restriction: no script runs, and its origin
        is opaque, so it cannot reach the admin's cookies or DOM."""
        html = email.payload.get("html")
        if not html:
            return ""
        return format_html(
            '<iframe class="autosend-preview" sandbox="" referrerpolicy="no-referrer" '
            'title="{}" srcdoc="{}"></iframe>',
            _("HTML preview"),
            html,
        )

    @admin.display(description=_("resend chain"))
    def resend_chain(self, email: Email) -> SafeString:
        """Links to the Email this one was resent from, and to its own resends."""
        lines = []
        if email.resent_from is not None:
            lines.append(format_html("{} {}", _("Resent from"), self._link(email.resent_from)))
        resends = [self._link(resend) for resend in email.resends.order_by("id")]
        if resends:
            links = format_html_join(", ", "{}", ((link,) for link in resends))
            lines.append(format_html("{} {}", _("Resent as"), links))
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    def _link(self, email: Email) -> SafeString:
        url = reverse(f"{self.admin_site.name}:autosend_queue_email_change", args=[email.pk])
        return format_html('<a href="{}">{}</a>', url, email.uuid)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """History is read-only: staff act on it through the actions, never by editing a row."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deleting an in-flight Email would orphan what QStash holds: ``autosend_prune`` deletes
        old history and never touches those."""
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return self._has_permission(request, "resend")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return self._has_permission(request, "cancel")

    def has_publish_permission(self, request: HttpRequest) -> bool:
        """Publishing hands due pending Emails to QStash, as ``autosend_flush`` does, without
        changing what is sent or when: it needs the model's plain change permission."""
        return self._has_permission(request, "change")

    def _has_permission(self, request: HttpRequest, action: str) -> bool:
        codename = get_permission_codename(action, self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EmailChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Email], search_term: str
    ) -> tuple[QuerySet[Email], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(search_filter(term)), False

    def get_urls(self) -> list[URLPattern]:
        resend = path(
            "<path:object_id>/resend/",
            self.admin_site.admin_view(self.resend_view),
            name="autosend_queue_email_resend",
        )
        return [resend, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"status_counts": recent_status_counts(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        context = {"can_resend": self.has_resend_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=context)

    @method_decorator(require_POST)
    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The change page's Resend button: a new Email now, then its own change page."""
        if not self.has_resend_permission(request):
            raise PermissionDenied
        email = self.get_object(request, object_id)
        if email is None:
            raise Http404(_("No email with this id."))
        copy = outbox.resend(email)
        self.message_user(
            request,
            format_html("{} {}", _("Resent as a new email:"), copy.uuid),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:autosend_queue_email_change", args=[copy.pk])
        )

    @admin.action(description=_("Resend selected emails"), permissions=["resend"])
    def resend_selected(
        self, request: HttpRequest, queryset: QuerySet[Email]
    ) -> TemplateResponse | None:
        if not is_confirmed(request):
            selection = Selection.of(queryset)
            plan = ngettext(
                "%(count)d new email will copy the selected one's body and be published now; "
                "the original stays as it is.",
                "%(count)d new emails will copy the selected ones' bodies and be published now; "
                "the originals stay as they are.",
                selection.total,
            ) % {"count": selection.total}
            return self._confirmation(request, queryset, selection, [plan])
        with transaction.atomic():  # Their publishes share one QStash call per 100.
            resent = [outbox.resend(email) for email in queryset.order_by("id")]
        message = ngettext("Resent %(count)d email.", "Resent %(count)d emails.", len(resent))
        self.message_user(request, message % {"count": len(resent)}, messages.SUCCESS)
        return None

    @admin.action(description=_("Cancel selected emails"), permissions=["cancel"])
    def cancel_selected(
        self, request: HttpRequest, queryset: QuerySet[Email]
    ) -> TemplateResponse | None:
        selection = Selection.of(queryset)
        if not is_confirmed(request):
            plan = ngettext(
                "%(count)d email not sent yet (pending, queued or retrying) will be cancelled; "
                "QStash is told to drop what it holds.",
                "%(count)d emails not sent yet (pending, queued or retrying) will be cancelled; "
                "QStash is told to drop what it holds.",
                selection.cancellable,
            ) % {"count": selection.cancellable}
            finished = selection.total - selection.cancellable
            return self._confirmation(
                request, queryset, selection, [plan, _unchanged_note(finished, gettext("finished"))]
            )
        cancelled = outbox.cancel(queryset)
        report = ngettext("Cancelled %(count)d email.", "Cancelled %(count)d emails.", cancelled)
        unchanged = _unchanged_note(selection.total - cancelled, gettext("finished"))
        self.message_user(
            request, _join(report % {"count": cancelled}, unchanged), messages.SUCCESS
        )
        return None

    @admin.action(description=_("Publish selected pending emails now"), permissions=["publish"])
    def publish_selected(
        self, request: HttpRequest, queryset: QuerySet[Email]
    ) -> TemplateResponse | None:
        selection = Selection.of(queryset)
        too_far = _beyond_max_delay_note(selection.beyond_max_delay)
        if not is_confirmed(request):
            plan = ngettext(
                "%(count)d pending email will be handed to QStash now; it keeps its scheduled "
                "time.",
                "%(count)d pending emails will be handed to QStash now; they keep their "
                "scheduled times.",
                selection.due,
            ) % {"count": selection.due}
            not_pending = selection.total - selection.due - selection.beyond_max_delay
            unchanged = _unchanged_note(not_pending, gettext("not pending"))
            return self._confirmation(request, queryset, selection, [plan, too_far, unchanged])
        summary = outbox.publish(outbox.due(queryset).order_by("id"))
        self.message_user(
            request,
            _join(_publish_report(summary), too_far),
            messages.WARNING if summary.deferred or summary.failed else messages.SUCCESS,
        )
        return None

    def _confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet[Email],
        selection: Selection,
        plan: list[str],
    ) -> TemplateResponse:
        """An intermediate page, like Django's delete confirmation: what will happen, the first
        emails selected, and a form that posts the same selection again with ``post=yes``, to the
        same filtered URL."""
        action = request.POST["action"]
        shown = list(queryset[:CONFIRMATION_LIST_SIZE])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Are you sure?"),
            "opts": self.opts,
            "action_label": getattr(self, action).short_description,
            "plan": [line for line in plan if line],
            "emails": [(email, status_badge(email)) for email in shown],
            "more": selection.total - len(shown),
            **resubmitted_selection(request),
            "form_url": request.get_full_path(),
        }
        return TemplateResponse(
            request, "admin/autosend_queue/email/action_confirmation.html", context
        )


def _join(*sentences: str) -> str:
    return " ".join(sentence for sentence in sentences if sentence)


def _unchanged_note(count: int, state: str) -> str:
    if count <= 0:
        return ""
    return ngettext(
        "%(count)d selected email is %(state)s and stays as it is.",
        "%(count)d selected emails are %(state)s and stay as they are.",
        count,
    ) % {"count": count, "state": state}


def _publish_report(summary: outbox.PublishSummary) -> str:
    queued = ngettext(
        "Handed %(count)d email to QStash.", "Handed %(count)d emails to QStash.", summary.queued
    )
    deferred = ngettext(
        "%(count)d could not reach QStash and stays pending for autosend_flush.",
        "%(count)d could not reach QStash and stay pending for autosend_flush.",
        summary.deferred,
    )
    failed = ngettext(
        "%(count)d was refused and failed.", "%(count)d were refused and failed.", summary.failed
    )
    return _join(
        queued % {"count": summary.queued},
        deferred % {"count": summary.deferred} if summary.deferred else "",
        failed % {"count": summary.failed} if summary.failed else "",
    )


def _beyond_max_delay_note(count: int) -> str:
    if count <= 0:
        return ""
    return ngettext(
        "%(count)d pending email is scheduled beyond MAX_DELAY (%(delay)s) and cannot be "
        "published now: it stays pending, and autosend_flush publishes it when its time is near.",
        "%(count)d pending emails are scheduled beyond MAX_DELAY (%(delay)s) and cannot be "
        "published now: they stay pending, and autosend_flush publishes them when their time is "
        "near.",
        count,
    ) % {"count": count, "delay": app_settings.max_delay}
