"""`DevServer`: the QStash emulator and the AutoSend sandbox in one process, for development,
demos and end-to-end tests. Never for production: it keeps everything in memory and its
credentials are public.

    with DevServer(qstash_port=0, autosend_port=0, time_scale=0.001) as dev:
        client = QStash(dev.token, base_url=dev.qstash_url)
        ...
        dev.wait_idle()
        assert dev.sandbox.emails
"""

import ssl
from functools import cache
from types import TracebackType

import httpx

from .autosend import AutoSendSandbox
from .defaults import (
    DEFAULT_AUTOSEND_PORT,
    DEFAULT_DELIVERY_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_QSTASH_PORT,
    DEFAULT_RATE_LIMIT,
    DEV_CURRENT_SIGNING_KEY,
    DEV_NEXT_SIGNING_KEY,
    DEV_QSTASH_TOKEN,
)
from .httpserver import BackgroundHTTPServer
from .messages import Attempt, DeadLetter, QStashMessage
from .qstash import QStashEmulator
from .scheduler import Scheduler


class DevServer:
    """Both local services, started by `start()` (or ``with``) and stopped by `stop()`.

    Ports 0 pick free ports; the bound ones are in `qstash_port`/`autosend_port` once started.
    ``time_scale`` multiplies every wait the server chooses itself (retry backoff, a destination's
    Retry-After, webhook retries); delays and not-before times asked for by publishers are kept.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        qstash_port: int = DEFAULT_QSTASH_PORT,
        autosend_port: int = DEFAULT_AUTOSEND_PORT,
        time_scale: float = 1.0,
        token: str = DEV_QSTASH_TOKEN,
        current_signing_key: str = DEV_CURRENT_SIGNING_KEY,
        next_signing_key: str = DEV_NEXT_SIGNING_KEY,
        autosend_api_key: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
    ) -> None:
        self.token = token
        self.current_signing_key = current_signing_key
        self.next_signing_key = next_signing_key
        self._host = host
        self._ports = (qstash_port, autosend_port)
        self._scheduler = Scheduler()
        self._client = httpx.Client(follow_redirects=False, verify=_tls_context())
        self.qstash = QStashEmulator(
            scheduler=self._scheduler,
            client=self._client,
            token=token,
            signing_key=current_signing_key,
            time_scale=time_scale,
            delivery_timeout=delivery_timeout,
        )
        self.sandbox = AutoSendSandbox(
            scheduler=self._scheduler,
            client=self._client,
            time_scale=time_scale,
            api_key=autosend_api_key,
            rate_limit=rate_limit,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
        self._servers: list[BackgroundHTTPServer] = []

    def start(self) -> "DevServer":
        """Bind both ports and start serving; raises OSError when a port is taken."""
        qstash_port, autosend_port = self._ports
        try:
            for port, handle, name in [
                (qstash_port, self.qstash.handle, "qstash"),
                (autosend_port, self.sandbox.handle, "autosend"),
            ]:
                self._servers.append(BackgroundHTTPServer(self._host, port, handle, name))
        except OSError:
            self.stop()
            raise
        self._scheduler.start()
        for server in self._servers:
            server.start()
        return self

    def stop(self) -> None:
        """Stop serving, let running deliveries finish, drop the waiting ones, close sockets."""
        self.sandbox.close()
        for server in self._servers:
            server.stop()
        self._scheduler.stop()
        self._client.close()

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def qstash_url(self) -> str:
        """The ``QSTASH_URL`` to configure, e.g. ``http://127.0.0.1:8080``."""
        return self._servers[0].url

    @property
    def autosend_url(self) -> str:
        """The sandbox's base URL; its inbox page is here."""
        return self._servers[1].url

    @property
    def autosend_api_url(self) -> str:
        """The AutoSend ``API_URL`` to configure (the base URL plus ``/v1``)."""
        return self.autosend_url + "/v1"

    @property
    def qstash_port(self) -> int:
        return self._servers[0].port

    @property
    def autosend_port(self) -> int:
        return self._servers[1].port

    @property
    def messages(self) -> list[QStashMessage]:
        """Messages QStash still holds (not yet delivered, dead-lettered or cancelled)."""
        return self.qstash.messages

    @property
    def dlq(self) -> list[DeadLetter]:
        return self.qstash.dlq

    @property
    def attempts(self) -> list[Attempt]:
        """Every delivery and callback request made so far, oldest first."""
        return self.qstash.attempts

    def release(self, message_id: str) -> bool:
        """Deliver a delayed message (or one between retries) now; False if it is not waiting."""
        return self.qstash.release(message_id)

    def reset(self, timeout: float = 5.0) -> None:
        """Forget all state (messages, DLQ, attempts, emails, faults) and let running work end.

        Lets one server be shared by many tests; raises TimeoutError if work is still running.
        """
        self.qstash.drop_messages()
        if not self.wait_idle(timeout):
            raise TimeoutError(f"devserver still busy after {timeout} s")
        # Only now: the work that was running may have recorded attempts, emails, dead letters.
        self.qstash.reset()
        self.sandbox.reset()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is waiting or running (deliveries, callbacks, webhooks).

        Returns False when ``timeout`` seconds pass first, e.g. while a delayed message waits.
        """
        return self._scheduler.wait_idle(timeout)


@cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one takes tens of milliseconds, and tests start many
    servers."""
    return ssl.create_default_context()
