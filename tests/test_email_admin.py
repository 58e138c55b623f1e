"""The Email admin: the history list, the read-only change page, and the staff actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from autosend_queue import send_email
from autosend_queue.admin.emails import COUNT_CAP
from autosend_queue.conf import app_settings
from autosend_queue.models import DeliveryStatus, Email, EmailEvent, EmailKind, EmailStatus
from autosend_queue.transports import locmem
from tests.factories import (
    EmailEventFactory,
    EmailFactory,
    QueuedEmailFactory,
    SequenceFactory,
    SequenceStepFactory,
    StaffUserFactory,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:autosend_queue_email_changelist")


def change_url(email: Email) -> str:
    return reverse("admin:autosend_queue_email_change", args=[email.pk])


def resend_url(email: Email) -> str:
    return reverse("admin:autosend_queue_email_resend", args=[email.pk])


def listed(response: Any) -> list[Email]:
    return list(response.context["cl"].result_list)


def post_action(
    client: Client, action: str, emails: list[Email], *, confirm: bool = True, query: str = ""
) -> Any:
    data: dict[str, Any] = {"action": action, "_selected_action": [email.pk for email in emails]}
    if confirm:
        data["post"] = "yes"
    return client.post(CHANGELIST + query, data)


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def staff_client(*permissions: str) -> Client:
    client = Client()
    client.force_login(StaffUserFactory(permissions=["view_email", *permissions]))
    return client


# The changelist


def test_changelist_shows_recipient_subject_sequence_status_and_times(admin_client):
    step = SequenceStepFactory(sequence__name="Onboarding", position=2)
    EmailFactory(
        to_email="ada@example.com",
        subject="Welcome aboard",
        sequence=step.sequence,
        sequence_step=step,
        status=EmailStatus.SENT,
        sent_at=timezone.now(),
        attempts=2,
    )
    page = admin_client.get(CHANGELIST).content.decode()
    for text in ("ada@example.com", "Welcome aboard", "Onboarding · step 2", "sent"):
        assert text in page


def test_a_bulk_email_shows_how_many_more_recipients_it_has(admin_client):
    EmailFactory(kind=EmailKind.BULK, to_email="first@example.com", recipient_count=40)
    assert "first@example.com (+39)" in admin_client.get(CHANGELIST).content.decode()


def test_a_template_email_shows_its_template_id(admin_client):
    EmailFactory(subject="", template_id="A-welcome")
    assert "template A-welcome" in admin_client.get(CHANGELIST).content.decode()


@pytest.mark.parametrize(("status", "symbol"), [("sent", "✓"), ("failed", "✗"), ("queued", "◔")])
def test_the_status_badge_reads_without_colour_as_a_symbol_and_a_word(admin_client, status, symbol):
    EmailFactory(status=status)
    page = admin_client.get(CHANGELIST).content.decode()
    assert f'<span aria-hidden="true">{symbol}</span> {status}</span>' in page


def test_the_newest_email_comes_first(admin_client):
    older, newer = EmailFactory(), EmailFactory()
    assert listed(admin_client.get(CHANGELIST)) == [newer, older]


def test_staff_cannot_add_an_email_by_hand(admin_client):
    add_url = reverse("admin:autosend_queue_email_add")
    assert admin_client.get(add_url).status_code == 403
    assert add_url not in admin_client.get(CHANGELIST).content.decode()


@pytest.mark.parametrize(
    ("query", "matching"),
    [
        ("status__exact=failed", {"status": EmailStatus.FAILED}),
        ("kind__exact=bulk", {"kind": EmailKind.BULK}),
        ("delivery_status__exact=bounced", {"delivery_status": DeliveryStatus.BOUNCED}),
    ],
)
def test_filtering_lists_only_the_matching_emails(admin_client, query, matching):
    match = EmailFactory(**matching)
    EmailFactory()
    assert listed(admin_client.get(f"{CHANGELIST}?{query}")) == [match]


def test_the_sequence_filter_lists_only_that_sequence_emails(admin_client):
    step = SequenceStepFactory()
    match = EmailFactory(sequence=step.sequence, sequence_step=step)
    EmailFactory()
    response = admin_client.get(f"{CHANGELIST}?sequence__id__exact={step.sequence.pk}")
    assert listed(response) == [match]


def test_the_sequence_filter_offers_every_sequence_even_one_without_emails(admin_client):
    SequenceFactory(name="Never sent yet")
    assert "Never sent yet" in admin_client.get(CHANGELIST).content.decode()


# Search


def test_searching_an_address_finds_emails_it_was_copied_on(admin_client):
    email = send_email("ada@example.com", subject="S", text="T", cc=["Grace@Example.com"])
    EmailFactory()
    assert listed(admin_client.get(CHANGELIST, {"q": "grace@example.com"})) == [email]


@pytest.mark.parametrize(
    ("field", "term"),
    [
        ("uuid", lambda email: str(email.uuid)),
        ("qstash_message_id", lambda email: email.qstash_message_id),
        ("autosend_email_id", lambda email: email.autosend_email_id),
        ("autosend_batch_id", lambda email: email.autosend_batch_id),
    ],
)
def test_searching_an_id_finds_its_email(admin_client, field, term):
    email = QueuedEmailFactory(
        autosend_email_id="65f1c0ffee0123456789abcd",
        autosend_batch_id="0b9f6a4e-6d1c-4f0e-9d55-3e6d1b2c7a10",
    )
    QueuedEmailFactory()
    assert listed(admin_client.get(CHANGELIST, {"q": term(email)})) == [email]


def test_searching_words_looks_in_the_subject(admin_client):
    email = EmailFactory(subject="Your invoice for March")
    EmailFactory(subject="Welcome")
    assert listed(admin_client.get(CHANGELIST, {"q": "invoice"})) == [email]


# Scale: the count is capped, the queries are constant


def test_below_the_cap_the_count_is_exact(admin_client):
    EmailFactory.create_batch(3)
    assert "3 emails" in admin_client.get(CHANGELIST).content.decode()


def test_beyond_the_cap_the_count_says_more_than_and_stops_counting(admin_client):
    now = timezone.now()
    Email.objects.bulk_create(
        Email(payload={}, to_email=f"r{n}@example.com", scheduled_at=now)
        for n in range(COUNT_CAP + 1)
    )
    response = admin_client.get(CHANGELIST)
    assert response.context["cl"].result_count == COUNT_CAP
    assert f"More than {COUNT_CAP} emails" in response.content.decode()
    assert f"Select all matching emails (more than {COUNT_CAP})" in response.content.decode()
    assert f"{COUNT_CAP} results" not in response.content.decode()


# Session, user, recent status counts, sequence choices, capped count, the page.
CHANGELIST_QUERIES = 6


@pytest.mark.parametrize("rows", [5, 50])
@pytest.mark.parametrize(
    "query",
    [
        "",
        "status__exact=pending",
        "kind__exact=single",
        "delivery_status__exact=",
        "sequence__id__exact={sequence}",
        "q=reader1@example.com",
        "q=0b9f6a4e-6d1c-4f0e-9d55-3e6d1b2c7a10",
        "q=Hello",
    ],
)
def test_a_changelist_page_costs_the_same_queries_for_5_or_50_emails(
    admin_client, django_assert_num_queries, rows, query
):
    step = SequenceStepFactory()
    EmailFactory.create_batch(rows, sequence=step.sequence, sequence_step=step)
    url = f"{CHANGELIST}?{query.format(sequence=step.sequence.pk)}"
    with django_assert_num_queries(CHANGELIST_QUERIES):
        response = admin_client.get(url)
    assert response.status_code == 200


def test_recent_counts_per_status_cover_the_last_day_and_week(admin_client):
    EmailFactory(status=EmailStatus.SENT)
    two_days_old = EmailFactory(status=EmailStatus.SENT)
    month_old = EmailFactory(status=EmailStatus.SENT)
    Email.objects.filter(pk=two_days_old.pk).update(created_at=timezone.now() - timedelta(days=2))
    Email.objects.filter(pk=month_old.pk).update(created_at=timezone.now() - timedelta(days=30))
    counts = {row.status: row for row in admin_client.get(CHANGELIST).context["status_counts"]}
    assert (counts["sent"].last_day, counts["sent"].last_week) == (1, 2)
    assert (counts["failed"].last_day, counts["failed"].last_week) == (0, 0)


# The change page


def test_the_change_page_shows_the_request_body_as_indented_json(admin_client):
    email = EmailFactory(subject="Hi")
    page = admin_client.get(change_url(email)).content.decode()
    assert "<pre>{\n  &quot;to&quot;: {\n    &quot;email&quot;" in page


def test_the_html_preview_is_a_sandboxed_iframe_where_no_script_can_run(admin_client):
    html = '<p class="x">Hi</p><script>alert("admin")</script>'
    email = EmailFactory(payload={"to": {"email": "a@example.com"}, "subject": "S", "html": html})
    page = admin_client.get(change_url(email)).content.decode()
    assert '<iframe class="autosend-preview" sandbox=""' in page
    assert 'srcdoc="&lt;p class=&quot;x&quot;&gt;Hi&lt;/p&gt;&lt;script&gt;alert(' in page
    assert "<script>alert" not in page


def test_the_change_page_never_shows_the_api_key(admin_client):
    email = QueuedEmailFactory()
    EmailEventFactory(email=email, kind=EmailEvent.Kind.PUBLISHED)
    page = admin_client.get(change_url(email)).content.decode()
    assert app_settings.API_KEY not in page
    assert "Forward-Authorization" not in page


def test_the_change_page_is_read_only_even_for_a_superuser(admin_client):
    email = EmailFactory(subject="Original")
    page = admin_client.get(change_url(email)).content.decode()
    assert 'name="_save"' not in page
    admin_client.post(change_url(email), {"subject": "Changed"})
    email.refresh_from_db()
    assert email.subject == "Original"


def test_the_timeline_lists_every_event_oldest_first(admin_client):
    email = QueuedEmailFactory()
    for kind in (EmailEvent.Kind.CREATED, EmailEvent.Kind.PUBLISHED, EmailEvent.Kind.ATTEMPT):
        EmailEventFactory(email=email, kind=kind)
    page = admin_client.get(change_url(email)).content.decode()
    timeline = " ".join(page[page.index('id="events-group"') :].split())
    labels = ("created", "published to QStash", "delivery attempt")
    positions = [timeline.index(f'<td class="field-kind"> <p>{label}</p>') for label in labels]
    assert positions == sorted(positions)


WEBHOOK_BOUNCE = {
    "type": "email.bounced",
    "data": {"to": {"email": "ada@example.com"}, "bounceType": "Permanent"},
}
WEBHOOK_CLICK_OLDER_SHAPE = {
    "event": "email.clicked",
    "data": {"to": {"email": "ada@example.com"}, "url": "https://example.com/x"},
}


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (WEBHOOK_BOUNCE, "Bounced (Permanent) — ada@example.com"),
        (WEBHOOK_CLICK_OLDER_SHAPE, "Clicked — ada@example.com — https://example.com/x"),
        ({"type": "email.spam_reported", "data": {}}, "Spam reported"),
    ],
)
def test_the_timeline_tells_what_an_autosend_webhook_said(admin_client, body, line):
    email = QueuedEmailFactory()
    EmailEventFactory(email=email, kind=EmailEvent.Kind.WEBHOOK, data=body)
    assert line in admin_client.get(change_url(email)).content.decode()


def test_staff_who_may_view_emails_see_the_timeline():
    email = EmailFactory()
    EmailEventFactory(email=email, kind=EmailEvent.Kind.CREATED, data={"scheduled_at": "soon"})
    page = staff_client().get(change_url(email)).content.decode()
    assert "scheduled_at: soon" in page


def test_the_resend_chain_links_the_original_and_its_resends(admin_client):
    original = EmailFactory()
    resend = EmailFactory(resent_from=original)
    assert change_url(resend) in admin_client.get(change_url(original)).content.decode()
    assert change_url(original) in admin_client.get(change_url(resend)).content.decode()


# The resend button


def test_the_resend_button_writes_a_linked_copy_and_opens_it(
    admin_client, django_capture_on_commit_callbacks
):
    original = EmailFactory(status=EmailStatus.FAILED, idempotency_key="signup:1")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(resend_url(original))
    copy = Email.objects.get(resent_from=original)
    assert response.status_code == 302
    assert response["Location"] == change_url(copy)
    assert (copy.status, copy.payload, copy.idempotency_key) == ("queued", original.payload, None)


def test_the_resend_button_is_only_offered_with_the_resend_permission():
    email = EmailFactory()
    assert resend_url(email) not in staff_client().get(change_url(email)).content.decode()
    assert resend_url(email) in staff_client("resend_email").get(change_url(email)).content.decode()


def test_the_resend_url_refuses_a_get(admin_client):
    assert admin_client.get(resend_url(EmailFactory())).status_code == 405
    assert Email.objects.count() == 1


def test_the_resend_url_refuses_staff_without_the_resend_permission():
    email = EmailFactory()
    assert staff_client("cancel_email").post(resend_url(email)).status_code == 403
    assert not Email.objects.filter(resent_from=email).exists()


# Actions


def offered_actions(client: Client) -> set[str]:
    form = client.get(CHANGELIST).context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices} - {""}


def test_each_action_is_offered_only_with_its_permission():
    assert offered_actions(staff_client()) == set()
    assert offered_actions(staff_client("resend_email")) == {"resend_selected"}
    assert offered_actions(staff_client("cancel_email")) == {"cancel_selected"}
    assert offered_actions(staff_client("change_email")) == {"publish_selected"}


def test_a_superuser_is_offered_every_action_and_no_delete(admin_client):
    assert offered_actions(admin_client) == {
        "resend_selected",
        "cancel_selected",
        "publish_selected",
    }


@pytest.mark.parametrize("action", ["resend_selected", "cancel_selected", "publish_selected"])
def test_an_action_first_shows_a_confirmation_and_changes_nothing(admin_client, action):
    emails = EmailFactory.create_batch(2)
    response = post_action(admin_client, action, emails, confirm=False)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/autosend_queue/email/action_confirmation.html"
    assert 'name="post" value="yes"' in response.content.decode()
    assert list(Email.objects.values_list("status", flat=True)) == ["pending", "pending"]
    assert not EmailEvent.objects.exists()


def test_the_confirmation_carries_the_selected_ids(admin_client):
    emails = EmailFactory.create_batch(2)
    page = post_action(admin_client, "cancel_selected", emails, confirm=False).content.decode()
    for email in emails:
        assert f'name="_selected_action" value="{email.pk}"' in page


def test_a_selection_across_pages_is_confirmed_as_the_filter_it_matches(admin_client):
    on_this_page = EmailFactory()
    response = admin_client.post(
        f"{CHANGELIST}?status__exact=pending",
        {"action": "cancel_selected", "select_across": "1", "_selected_action": [on_this_page.pk]},
    )
    page = response.content.decode()
    assert 'name="select_across" value="1"' in page
    assert 'action="/admin/autosend_queue/email/?status__exact=pending"' in page


def test_a_confirmed_selection_across_pages_acts_on_every_matching_email(admin_client):
    on_this_page, on_another_page = EmailFactory(), EmailFactory()
    sent = EmailFactory(status=EmailStatus.SENT)
    admin_client.post(
        f"{CHANGELIST}?status__exact=pending",
        {
            "action": "cancel_selected",
            "select_across": "1",
            "_selected_action": [on_this_page.pk],
            "post": "yes",
        },
    )
    statuses = dict(Email.objects.values_list("pk", "status"))
    assert [statuses[e.pk] for e in (on_this_page, on_another_page, sent)] == [
        "cancelled",
        "cancelled",
        "sent",
    ]


def test_the_cancel_confirmation_says_how_many_will_be_cancelled(admin_client):
    emails = [EmailFactory(), QueuedEmailFactory(), EmailFactory(status=EmailStatus.SENT)]
    page = post_action(admin_client, "cancel_selected", emails, confirm=False).content.decode()
    assert "2 emails not sent yet (pending, queued or retrying) will be cancelled" in page
    assert "1 selected email is finished and stays as it is." in page


def test_confirmed_resend_writes_new_emails_published_now(
    admin_client, django_capture_on_commit_callbacks
):
    originals = [EmailFactory(status=EmailStatus.SENT), EmailFactory(status=EmailStatus.FAILED)]
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(admin_client, "resend_selected", originals)
    copies = Email.objects.filter(resent_from__in=originals)
    assert sorted(copies.values_list("status", flat=True)) == ["queued", "queued"]
    assert len(locmem.outbox) == 2
    assert message_texts(response) == ["Resent 2 emails."]


def test_confirmed_cancel_cancels_pending_queued_and_retrying_and_leaves_the_sent(
    admin_client, django_capture_on_commit_callbacks
):
    pending, queued = EmailFactory(), QueuedEmailFactory()
    retrying = QueuedEmailFactory(status=EmailStatus.RETRYING)
    sent = EmailFactory(status=EmailStatus.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(admin_client, "cancel_selected", [pending, queued, retrying, sent])
    statuses = dict(Email.objects.values_list("pk", "status"))
    assert [statuses[e.pk] for e in (pending, queued, retrying, sent)] == [
        "cancelled",
        "cancelled",
        "cancelled",
        "sent",
    ]
    assert sorted(locmem.cancelled) == sorted(
        [queued.qstash_message_id, retrying.qstash_message_id]
    )
    assert message_texts(response) == [
        "Cancelled 3 emails. 1 selected email is finished and stays as it is."
    ]


def test_publish_now_hands_due_pending_emails_to_qstash_and_reports_the_too_distant(admin_client):
    due = EmailFactory(scheduled_at=timezone.now() + timedelta(days=1))
    distant = EmailFactory(scheduled_at=timezone.now() + app_settings.max_delay + timedelta(days=1))
    response = post_action(admin_client, "publish_selected", [due, distant])
    statuses = dict(Email.objects.values_list("pk", "status"))
    assert (statuses[due.pk], statuses[distant.pk]) == ("queued", "pending")
    (message,) = message_texts(response)
    assert message.startswith("Handed 1 email to QStash. 1 pending email is scheduled beyond")


def test_publish_now_confirmation_counts_due_distant_and_not_pending(admin_client):
    emails = [
        EmailFactory(),
        EmailFactory(scheduled_at=timezone.now() + app_settings.max_delay + timedelta(hours=1)),
        QueuedEmailFactory(),
    ]
    page = post_action(admin_client, "publish_selected", emails, confirm=False).content.decode()
    assert "1 pending email will be handed to QStash now" in page
    assert "1 pending email is scheduled beyond MAX_DELAY" in page
    assert "1 selected email is not pending and stays as it is." in page


def test_staff_without_the_permission_cannot_run_an_action_by_forging_the_post():
    email = QueuedEmailFactory()
    response = post_action(staff_client("resend_email"), "cancel_selected", [email])
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED
    assert message_texts(response) == ["No action selected."]
