"""URLs to include under ``autosend/``: QStash's callbacks and AutoSend's webhooks.

``path("autosend/", include("autosend_queue.urls"))``
"""

from django.urls import path

from autosend_queue import views

app_name = "autosend_queue"

urlpatterns = [
    path("callback/<uuid:email_uuid>/", views.callback, name="callback"),
    path("callback/<uuid:email_uuid>/failure/", views.failure_callback, name="failure_callback"),
    path("webhook/", views.webhook, name="webhook"),
]
