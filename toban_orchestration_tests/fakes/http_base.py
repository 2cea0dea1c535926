"""What the local servers share: an HTTP server on 127.0.0.1 and a free port, served from a
daemon thread, used as a context manager, with a log of the requests it answered.

A fake (the Slack Web API, the OpenAI-compatible server) subclasses ``LocalHTTPServer`` for its
protocol and gives it a handler derived from ``LocalRequestHandler``; the lifecycle, the
connection bookkeeping and the request log live here once.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Self, TypeVar, cast

HOST: Final = "127.0.0.1"
JOIN_TIMEOUT_SECONDS: Final = 5.0
POLL_INTERVAL_SECONDS: Final = 0.05  # how soon serve_forever notices stop()

LoggedRequest = TypeVar("LoggedRequest")


class _SocketServer(ThreadingHTTPServer):
    """The standard library's threading server, carrying its ``LocalHTTPServer`` to handlers."""

    daemon_threads = True  # a client keeping a connection open never blocks interpreter exit
    block_on_close = False  # stop() ends the connections it must; see ends_connections_at_stop
    allow_reuse_address = True
    request_queue_size = 128  # a burst of parallel clients is queued, not refused

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        local: LocalHTTPServer[Any],
    ) -> None:
        self.local = local
        super().__init__(address, handler)


class LocalHTTPServer(Generic[LoggedRequest]):
    """An HTTP server on 127.0.0.1 (a free port) answering from a background thread.

    ``with Server(...) as server:`` starts it and stops it; ``base_url`` is where clients point.
    ``request_log`` holds one entry of the subclass's record type per request it logged.
    ``connections_accepted`` counts the TCP (or TLS) connections clients opened.
    """

    thread_name: ClassVar[str] = "local-http-server"
    """The serving thread's name, followed by the port: findable in a thread dump."""
    base_path: ClassVar[str] = "/"
    """The path ``base_url`` ends with, as the client library expects it."""
    ends_connections_at_stop: ClassVar[bool] = False
    """Whether ``stop()`` shuts kept-alive connections and joins their handler threads, so that
    no idle handler waits on a pooled connection after the server stopped."""

    def __init__(
        self, handler: type[LocalRequestHandler], *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.tls = tls
        self.connections_accepted = 0
        self._handler_class = handler
        self._lock = threading.Lock()  # guards the log, the connections and subclasses' state
        self._request_log: list[LoggedRequest] = []
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()  # set by stop(): answers still waiting end early
        self._httpd: _SocketServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free port and serve from a daemon thread (no-op when running); ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _SocketServer((HOST, 0), self._handler_class, self)
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name=f"{self.thread_name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port; answers still waiting (slow or hanging) are woken
        and dropped. Records stay readable, and ``start()`` serves again on a new port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        thread.join(JOIN_TIMEOUT_SECONDS)
        if self.ends_connections_at_stop:
            self._end_connections()
        httpd.server_close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``: the server's root."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give the client library: the root and ``base_path``."""
        return f"{self.url}{self.base_path}"

    # The request log -----------------------------------------------------------------------

    @property
    def request_log(self) -> list[LoggedRequest]:
        """The requests logged so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._request_log)

    def clear_request_log(self) -> None:
        with self._lock:
            self._request_log.clear()

    def _log_request(self, record: LoggedRequest) -> None:
        with self._lock:
            self._request_log.append(record)

    # Connections (called from handler threads) ---------------------------------------------

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self.connections_accepted += 1
            self._connections[connection] = threading.current_thread()

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.pop(connection, None)

    def _end_connections(self) -> None:
        with self._lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        for _, handler_thread in connections:
            handler_thread.join(JOIN_TIMEOUT_SECONDS)


class LocalRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the SDKs' connection pools expect; silent (the servers log
    requests themselves); tells its server about each connection it serves."""

    protocol_version = "HTTP/1.1"

    @property
    def local_server(self) -> LocalHTTPServer[Any]:
        return cast(_SocketServer, self.server).local

    def setup(self) -> None:
        super().setup()
        self.local_server._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.local_server._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: access lines on stderr would only clutter pytest's output."""
