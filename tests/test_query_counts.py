"""The cost of sending does not grow with the number of emails."""

from __future__ import annotations

import pytest
from django.db import transaction

from autosend_queue import send_bulk, send_email

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("recipients", [1, 100, 250])
def test_send_bulk_costs_the_same_queries_for_any_number_of_recipients(
    recipients, django_assert_num_queries, django_capture_on_commit_callbacks
):
    addresses = [f"r{i}@example.com" for i in range(recipients)]
    with django_assert_num_queries(5):  # savepoint, 3 bulk inserts, release
        send_bulk(addresses, template_id="A-1")


def test_send_email_costs_a_constant_number_of_queries(django_assert_num_queries):
    with django_assert_num_queries(5):
        send_email(
            "a@example.com", subject="S", text="T", cc=[f"c{i}@example.com" for i in range(40)]
        )


@pytest.mark.parametrize("count", [1, 100])
def test_publishing_on_commit_costs_the_same_queries_for_1_or_100_emails(
    count, django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for index in range(count):
            send_email(f"r{index}@example.com", subject="S", text="T")
    # Select the due rows, then in a savepoint one UPDATE and one insert of events.
    with django_assert_num_queries(5):
        callbacks[0]()
