"""What the admin's confirmation pages share: telling the confirming POST apart, and posting the
selection back as it came (see ``templates/admin/autosend_queue/confirm_action_form.html``)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import helpers
from django.http import HttpRequest


def is_confirmed(request: HttpRequest) -> bool:
    """Whether this is the POST of a confirmation page, not the action's first POST."""
    return request.POST.get("post") == "yes"


def resubmitted_selection(request: HttpRequest) -> dict[str, Any]:
    """The context the confirmation form needs to post the same action and selection again.

    The ids come back as they were posted (at most a page of checkboxes), with
    ``select_across``, so "everything this filter matches" never becomes a million ids.
    """
    return {
        "action": request.POST["action"],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across") == "1",
    }
