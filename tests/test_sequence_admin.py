"""The sequence and enrollment admin: steps inline, a timeline, counts, and a confirmed cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.utils import timezone

from autosend_queue.admin.sequences import enrollment_counts, timeline
from autosend_queue.durations import describe_delay, humanize_duration
from autosend_queue.models import EmailStatus, Enrollment, Sequence, SequenceStep
from tests.factories import (
    EmailFactory,
    EnrollmentFactory,
    QueuedEmailFactory,
    SequenceFactory,
    SequenceStepFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SEQUENCES = "/admin/autosend_queue/sequence/"
ENROLLMENTS = "/admin/autosend_queue/enrollment/"


@pytest.fixture(autouse=True)
def _no_enrollment_on_signup(autosend_settings):
    """Staff users made here are not enrolled by the signup receiver."""
    autosend_settings(ENROLL_ON_SIGNUP=False)


def staff_client(client, *codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def step_form_data(sequence: Sequence | None = None, **step) -> dict[str, str]:
    """The POST of a sequence change form with one new step row."""
    return {
        "name": sequence.name if sequence else "Onboarding",
        "slug": sequence.slug if sequence else "onboarding",
        "trigger": "signup",
        "is_active": "on",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "1",
        "steps-0-delay": "2 03:00:00",
        "steps-0-dynamic_data": "{}",
        "steps-0-is_active": "on",
        **{f"steps-0-{name}": value for name, value in step.items()},
    }


def cancel_action(client, url: str, action: str, *pks: int, confirmed: bool):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    if confirmed:
        data["post"] = "yes"
    return client.post(url, data)


# Durations


@pytest.mark.parametrize(
    ("duration", "said"),
    [
        (timedelta(days=2, hours=3), "2 days 3 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(hours=1, minutes=30), "1 hour 30 minutes"),
        (timedelta(seconds=45), "45 seconds"),
        (timedelta(weeks=1, seconds=1), "7 days 1 second"),
        (timedelta(0), "0 seconds"),
    ],
)
def test_durations_are_said_as_people_say_them(duration, said):
    assert humanize_duration(duration) == said


def test_a_step_without_delay_is_sent_at_enrollment():
    assert describe_delay(timedelta(0)) == "at enrollment"


def test_a_delayed_step_is_sent_after_its_delay():
    assert describe_delay(timedelta(days=2, hours=3)) == "after 2 days 3 hours"


# The sequence change page


def test_the_change_page_lists_the_steps_by_position_with_their_delays_said_plainly(admin_client):
    sequence = SequenceFactory()
    SequenceStepFactory(sequence=sequence, position=2, delay=timedelta(days=2, hours=3))
    SequenceStepFactory(sequence=sequence, position=1, subject="Welcome aboard")
    response = admin_client.get(f"{SEQUENCES}{sequence.pk}/change/")
    formset = response.context["inline_admin_formsets"][0].formset
    assert [form.instance.position for form in formset.initial_forms] == [1, 2]
    page = response.content.decode()
    assert "after 2 days 3 hours" in page
    assert "at enrollment" in page
    assert "2 days, 3:00:00" not in page


def test_the_timeline_shows_what_a_user_enrolled_now_gets_and_when(admin_client):
    sequence = SequenceFactory()
    SequenceStepFactory(sequence=sequence, position=1, subject="Welcome aboard")
    SequenceStepFactory(sequence=sequence, position=2, delay=timedelta(days=1), template_id="A-7")
    SequenceStepFactory(sequence=sequence, position=3, subject="Switched off", is_active=False)
    response = admin_client.get(f"{SEQUENCES}{sequence.pk}/change/")
    entries = response.context["timeline"]
    assert [(entry.when, entry.content) for entry in entries] == [
        ("at enrollment", "Welcome aboard"),
        ("after 1 day", "template A-7"),
    ]
    assert abs(entries[1].at - (timezone.now() + timedelta(days=1))) < timedelta(minutes=1)
    assert "Timeline for a user enrolled now" in response.content.decode()


def test_the_timeline_of_an_inactive_sequence_says_nobody_new_is_enrolled(admin_client):
    sequence = SequenceFactory(is_active=False)
    page = admin_client.get(f"{SEQUENCES}{sequence.pk}/change/").content.decode()
    assert "nobody new is enrolled" in page


def test_timeline_reads_the_steps_in_one_query(django_assert_num_queries):
    sequence = SequenceFactory()
    SequenceStepFactory.create_batch(5, sequence=sequence)
    with django_assert_num_queries(1):
        timeline(sequence)


def test_enrollment_counts_by_status_take_one_aggregate_query(django_assert_num_queries):
    sequence = SequenceFactory(trigger=Sequence.Trigger.MANUAL)
    EnrollmentFactory.create_batch(2, sequence=sequence)
    EnrollmentFactory(sequence=sequence, status=Enrollment.Status.COMPLETED)
    EnrollmentFactory(status=Enrollment.Status.CANCELLED)
    with django_assert_num_queries(1):
        counts = enrollment_counts(sequence)
    assert counts == {"active": 2, "completed": 1, "cancelled": 0}


def test_the_change_page_links_each_count_to_the_filtered_enrollments(admin_client):
    enrollment = EnrollmentFactory()
    page = admin_client.get(f"{SEQUENCES}{enrollment.sequence_id}/change/").content.decode()
    link = f"{ENROLLMENTS}?sequence__id__exact={enrollment.sequence_id}&amp;status__exact=active"
    assert f'<a href="{link}">1 active</a>' in page


def test_the_add_page_has_no_enrollment_counts(admin_client):
    response = admin_client.get(f"{SEQUENCES}add/")
    assert response.status_code == 200
    assert "enrollments by status" not in response.content.decode()


def test_a_step_is_saved_from_the_inline_with_a_delay_in_days_and_hours(admin_client):
    response = admin_client.post(
        f"{SEQUENCES}add/", step_form_data(subject="Hello", html="<p>Hi</p>")
    )
    assert response.status_code == 302
    assert SequenceStep.objects.get().delay == timedelta(days=2, hours=3)


def test_a_step_with_a_template_and_html_is_refused_on_the_html_field(admin_client):
    response = admin_client.post(
        f"{SEQUENCES}add/", step_form_data(template_id="A-1", html="<p>Hi</p>")
    )
    assert response.status_code == 200
    (step_errors,) = response.context["inline_admin_formsets"][0].formset.errors
    assert list(step_errors) == ["html"]
    assert not Sequence.objects.exists()


def test_a_step_without_subject_or_template_is_refused_on_the_subject_field(admin_client):
    response = admin_client.post(f"{SEQUENCES}add/", step_form_data(html="<p>Hi</p>"))
    (step_errors,) = response.context["inline_admin_formsets"][0].formset.errors
    assert list(step_errors) == ["subject"]


def test_the_sequence_list_filters_by_trigger(admin_client):
    SequenceFactory(name="On signup")
    SequenceFactory(name="By hand", trigger=Sequence.Trigger.MANUAL)
    response = admin_client.get(SEQUENCES, {"trigger__exact": "manual"})
    assert [sequence.name for sequence in response.context["cl"].result_list] == ["By hand"]


# Enrollments


def test_the_enrollment_list_filters_by_status(admin_client):
    EnrollmentFactory()
    completed = EnrollmentFactory(status=Enrollment.Status.COMPLETED)
    response = admin_client.get(ENROLLMENTS, {"status__exact": "completed"})
    assert list(response.context["cl"].result_list) == [completed]


def test_the_enrollment_list_searches_by_the_users_email(admin_client):
    EnrollmentFactory(user=UserFactory(email="ada@example.com"))
    wanted = EnrollmentFactory(user=UserFactory(email="grace@example.com"))
    response = admin_client.get(ENROLLMENTS, {"q": "grace@"})
    assert list(response.context["cl"].result_list) == [wanted]


def test_an_enrollment_page_is_read_only_and_lists_its_emails(admin_client):
    enrollment = EnrollmentFactory()
    EmailFactory(enrollment=enrollment, subject="Welcome aboard")
    response = admin_client.get(f"{ENROLLMENTS}{enrollment.pk}/change/")
    page = response.content.decode()
    assert "Welcome aboard" in page
    assert 'name="_save"' not in page


def test_enrollments_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(f"{ENROLLMENTS}add/").status_code == 403


def test_cancelling_enrollments_asks_for_confirmation_first(admin_client):
    enrollment = EnrollmentFactory()
    EmailFactory(enrollment=enrollment)
    response = cancel_action(
        admin_client, ENROLLMENTS, "cancel_selected", enrollment.pk, confirmed=False
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 email not sent yet will be cancelled" in page
    assert "1 active enrollment will be marked cancelled" in page
    assert 'name="csrfmiddlewaretoken"' in page
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_confirming_cancels_the_enrollments_and_says_how_many(admin_client):
    enrollment = EnrollmentFactory()
    EmailFactory(enrollment=enrollment)
    QueuedEmailFactory(enrollment=enrollment)
    EmailFactory(enrollment=enrollment, status=EmailStatus.SENT)
    response = cancel_action(
        admin_client, ENROLLMENTS, "cancel_selected", enrollment.pk, confirmed=True
    )
    assert response.status_code == 302
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.CANCELLED
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == ["Cancelled 1 enrollment and 2 emails."]


def test_cancelling_needs_the_cancel_email_permission(client):
    staff = staff_client(client, "view_enrollment")
    enrollment = EnrollmentFactory()
    EmailFactory(enrollment=enrollment)
    assert "cancel_selected" not in staff.get(ENROLLMENTS).content.decode()
    cancel_action(staff, ENROLLMENTS, "cancel_selected", enrollment.pk, confirmed=True)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_staff_with_the_cancel_email_permission_may_cancel(client):
    staff = staff_client(client, "view_enrollment", "cancel_email")
    enrollment = EnrollmentFactory()
    cancel_action(staff, ENROLLMENTS, "cancel_selected", enrollment.pk, confirmed=True)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.CANCELLED


def test_a_sequences_remaining_emails_are_cancelled_from_the_sequence_list(admin_client):
    sequence = SequenceFactory(trigger=Sequence.Trigger.MANUAL)
    first, second = EnrollmentFactory.create_batch(2, sequence=sequence)
    other = EnrollmentFactory()
    for enrollment in (first, second, other):
        EmailFactory(enrollment=enrollment)
    response = cancel_action(
        admin_client, SEQUENCES, "cancel_remaining_emails", sequence.pk, confirmed=True
    )
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == ["Cancelled 2 enrollments and 2 emails."]
    other.refresh_from_db()
    assert other.status == Enrollment.Status.ACTIVE
