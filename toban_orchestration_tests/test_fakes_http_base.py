"""The local servers' shared base: a free port, a serving thread, the request log, and a stop
that closes the port (and, when asked, the connections clients keep alive)."""

import http.client
import socket
import threading
from typing import ClassVar

import pytest

from toban_orchestration_tests.fakes.http_base import LocalHTTPServer, LocalRequestHandler


class _EchoHandler(LocalRequestHandler):
    def do_GET(self) -> None:
        body = self.path.encode()
        self.local_server._log_request(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _EchoServer(LocalHTTPServer[str]):
    thread_name: ClassVar[str] = "echo-server"
    base_path: ClassVar[str] = "/echo/"

    def __init__(self) -> None:
        super().__init__(_EchoHandler)


class _PoolFriendlyEchoServer(_EchoServer):
    ends_connections_at_stop: ClassVar[bool] = True


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _handler_threads() -> set[threading.Thread]:
    """The standard library names the thread of each connection after its target."""
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


def test_a_server_serves_logs_and_closes_its_port_on_stop() -> None:
    server = _EchoServer()
    with pytest.raises(RuntimeError, match="_EchoServer is not running"):
        _ = server.port
    with server:
        port = server.port
        assert server.base_url == f"http://127.0.0.1:{port}/echo/"
        assert server.start() is server  # already running: the same port
        assert server.port == port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for path in ("/echo/a", "/echo/b"):  # one kept-alive connection for both
            connection.request("GET", path)
            assert connection.getresponse().read() == path.encode()
        assert server.request_log == ["/echo/a", "/echo/b"]
        assert server.connections_accepted == 1
        assert any(t.name == f"echo-server-{port}" for t in threading.enumerate())
        connection.close()
    assert _refused(port)
    assert server.request_log == ["/echo/a", "/echo/b"]  # records outlive the server
    server.clear_request_log()
    assert server.request_log == []


def test_a_server_that_ends_connections_leaves_no_idle_handler_behind() -> None:
    before = _handler_threads()
    with _PoolFriendlyEchoServer() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/echo/kept-alive")
        connection.getresponse().read()
        assert _handler_threads() - before  # the handler waits on the kept-alive connection
    assert _handler_threads() - before == set()
    connection.close()
