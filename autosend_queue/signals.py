"""Signals sent when an Email changes for good; each is sent once per transition, not per callback.

- ``email_sent(sender=Email, email=...)``: AutoSend accepted it.
- ``email_failed(sender=Email, email=..., reason=...)``: retries ran out, or it was refused.
- ``email_event(sender=Email, email=..., event=...)``: an AutoSend webhook (delivered, bounced...).
"""

from django.dispatch import Signal

email_sent = Signal()
email_failed = Signal()
email_event = Signal()
