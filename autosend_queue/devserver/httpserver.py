"""A minimal threaded HTTP server that runs in the background and hands requests to a function.

Both emulated services are plain functions from `Request` to `Response`; this module owns the
sockets and threads. Responses close the connection (HTTP/1.0 style), so every handler thread ends
as soon as it has answered and `stop()` can join them all.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def canonical_header(name: str) -> str:
    """``upstash-forward-x-id`` -> ``Upstash-Forward-X-Id``, the form QStash (a Go server) uses."""
    return "-".join(part.capitalize() for part in name.split("-"))


@dataclass
class Request:
    """An incoming request; ``headers`` keys are in canonical form."""

    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes
    client_ip: str

    @property
    def path(self) -> str:
        return urlsplit(self.raw_path).path

    @property
    def query(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(urlsplit(self.raw_path).query).items()}

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def json(self) -> Any:
        """The body decoded as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a handler answers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> "Response":
        return cls(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def html(cls, status: int, page: str) -> "Response":
        return cls(
            status,
            page.encode(),
            {
                "Content-Type": "text/html; charset=utf-8",
                # The inbox shows untrusted email HTML: forbid scripts and remote loads outright.
                "Content-Security-Policy": (
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'"
                ),
                "X-Content-Type-Options": "nosniff",
            },
        )


Handler = Callable[[Request], Response]

logger = logging.getLogger(__name__)

SHUTDOWN_POLL_SECONDS = 0.02


class _QuietThreadingHTTPServer(ThreadingHTTPServer):
    # Non-daemon handler threads are tracked, so server_close() joins them.
    daemon_threads = False
    block_on_close = True


def _request_handler_class(handle: Handler) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                raw_path=self.path,
                headers={canonical_header(key): value for key, value in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                client_ip=self.client_address[0],
            )
            try:
                response = handle(request)
            except Exception:
                logger.exception("devserver failed on %s %s", request.method, request.raw_path)
                response = Response.json(500, {"error": "devserver internal error"})
            self._send(response)

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the per-request stderr lines; the services log what matters."""

    return RequestHandler


class BackgroundHTTPServer:
    """Serves ``handle`` on ``host:port`` from a background thread; port 0 picks a free port."""

    def __init__(self, host: str, port: int, handle: Handler, name: str) -> None:
        self._server = _QuietThreadingHTTPServer((host, port), _request_handler_class(handle))
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        # A wildcard address is not something a client can call: show the loopback instead.
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
        return f"http://{shown_host}:{self.port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        # A short poll interval keeps stop() quick (the default is half a second).
        self._server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    def stop(self) -> None:
        """Stop accepting, wait for the requests being answered, close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
