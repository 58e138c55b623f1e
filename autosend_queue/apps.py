"""Django application configuration: registers system checks and signal receivers."""

from django.apps import AppConfig


class AutosendQueueConfig(AppConfig):
    name = "autosend_queue"
    verbose_name = "AutoSend queue"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from autosend_queue import checks, receivers

        checks.register()
        receivers.connect()
