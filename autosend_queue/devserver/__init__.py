"""A local, in-memory stand-in for Upstash QStash and for AutoSend, for development and tests.

`DevServer` runs both; ``manage.py autosend_devserver`` runs it from the command line. It speaks
enough of the QStash v2 API for the official ``qstash`` SDK, and AutoSend's mail endpoints with
their validation rules. Never use it in production: its credentials are public.
"""

from .autosend import AutoSendSandbox, Faults
from .defaults import (
    DEFAULT_AUTOSEND_PORT,
    DEFAULT_HOST,
    DEFAULT_QSTASH_PORT,
    DEV_CURRENT_SIGNING_KEY,
    DEV_NEXT_SIGNING_KEY,
    DEV_QSTASH_TOKEN,
)
from .mailbox import ReceivedEmail
from .messages import Attempt, DeadLetter, QStashMessage
from .qstash import QStashEmulator
from .server import DevServer

__all__ = [
    "DEFAULT_AUTOSEND_PORT",
    "DEFAULT_HOST",
    "DEFAULT_QSTASH_PORT",
    "DEV_CURRENT_SIGNING_KEY",
    "DEV_NEXT_SIGNING_KEY",
    "DEV_QSTASH_TOKEN",
    "Attempt",
    "AutoSendSandbox",
    "DeadLetter",
    "DevServer",
    "Faults",
    "QStashEmulator",
    "QStashMessage",
    "ReceivedEmail",
]
