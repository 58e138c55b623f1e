"""Fixtures for the devserver tests: a running DevServer, an SDK client, a recording destination."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from qstash import QStash

from autosend_queue.devserver import DevServer

# Small enough that three retries (e^2.5, e^5, e^7.5 seconds) take a fraction of a second.
FAST = 0.0001


def _lower_keys(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


@dataclass(frozen=True)
class Received:
    """A request the destination got; header names are lower-cased, ``at`` is a wall time."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0


class Destination:
    """A local HTTP endpoint that records requests and answers with scripted replies."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reply_with(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, then 200."""
        with self._lock:
            self._replies.extend(replies)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(self.requests) >= count, f"got {len(self.requests)} requests, not {count}"
        return list(self.requests)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.pop(0) if self._replies else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        destination = self

        class Handler(BaseHTTPRequestHandler):
            def _record_and_reply(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                destination.requests.append(
                    Received(self.command, self.path, _lower_keys(self.headers), body, time.time())
                )
                reply = destination._next_reply()
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_PUT = do_GET = do_DELETE = _record_and_reply

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(scope="session")
def shared_dev() -> Iterator[DevServer]:
    with DevServer(qstash_port=0, autosend_port=0, time_scale=FAST, rate_limit=0) as server:
        yield server


@pytest.fixture
def dev(shared_dev: DevServer) -> Iterator[DevServer]:
    """One server for the whole session, emptied after each test (starting one per test is slow)."""
    yield shared_dev
    shared_dev.reset()


@pytest.fixture(scope="session")
def shared_client(shared_dev: DevServer) -> QStash:
    return QStash(shared_dev.token, base_url=shared_dev.qstash_url, retry=False)


@pytest.fixture
def client(dev: DevServer, shared_client: QStash) -> QStash:
    """The official SDK's client, talking to `dev`."""
    return shared_client


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as session:
        yield session


@pytest.fixture
def destination() -> Iterator[Destination]:
    endpoint = Destination()
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def receiver() -> Iterator[Destination]:
    """A second endpoint, for callbacks and webhooks."""
    endpoint = Destination()
    endpoint.start()
    yield endpoint
    endpoint.stop()
