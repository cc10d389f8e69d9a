"""The channel transport (urllib3's pools) against real HTTP servers on loopback: what it
sends, kept-alive connections, and every way an answer can come back (Content-Length,
chunked, connection closed, cut short, a kept-alive connection the server dropped)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aggregation_gateway.channels.base import ChannelError, HttpRequest
from aggregation_gateway.channels.http_transport import KeepAliveTransport


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Signature", "sig-value")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class RawServer:
    """Reads one request head (and a Content-Length body) per answer it is given, records
    the exact bytes, and writes the canned answer; ``None`` closes the connection instead,
    and with ``close_after`` every answer is followed by closing it."""

    def __init__(self, answers: list[bytes | None], close_after: bool = False) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.received: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, reader) -> bytes | None:  # type: ignore[no-untyped-def]
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = reader.readline()
            if not line:
                return None
            head += line
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return head + reader.read(length)

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.listener.accept()
            self.connections += 1
            reader = conn.makefile("rb")
            with conn, reader:
                while self.answers:
                    request = self._read_request(reader)
                    if request is None:
                        break
                    self.received.append(request)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if self.close_after:
                        break

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[list[bytes | None]], RawServer]]:
    servers: list[RawServer] = []

    def make(answers: list[bytes | None], close_after: bool = False) -> RawServer:
        servers.append(RawServer(answers, close_after))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Signature: s\r\n\r\n{}"


@pytest.mark.parametrize(("method", "body"), [("POST", b'{"amount_fen":100}'),
                                              ("GET", b""), ("POST", b"")])
def test_the_request_carries_method_target_headers_and_body(raw_server, method: str,
                                                            body: bytes) -> None:
    server = raw_server([OK])
    headers = {"X-App-Id": "gw-1", "X-Timestamp": "1763712000000", "X-Nonce": "n" * 24,
               "X-Signature": "abc_-", "Accept": "application/json"}
    if body:
        headers["Content-Type"] = "application/json"
    answer = KeepAliveTransport()(HttpRequest(method, f"{server.url}/v1/orders/T1?x=1",
                                              headers, body))
    assert answer.status == 200 and answer.body == b"{}"
    assert answer.headers["X-Signature"] == "s"
    head, _, sent_body = server.received[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == f"{method} /v1/orders/T1?x=1 HTTP/1.1".encode()
    for name, value in headers.items():
        assert f"{name}: {value}".encode() in lines
    assert sent_body == body


def test_connections_are_kept_alive(echo_url: str) -> None:
    transport = KeepAliveTransport()
    body = b'{"out_trade_no":"p1","amount_fen":100}'
    for _ in range(3):
        answer = transport(HttpRequest("POST", f"{echo_url}/v1/orders",
                                       {"Content-Type": "application/json"}, body))
        assert answer.status == 200 and answer.body == body
        assert answer.headers["X-Signature"] == "sig-value"
    pool = transport._pools.connection_from_url(echo_url)
    assert pool.num_connections == 1  # one connection served all three


def test_chunked_and_interim_answers_are_read_whole(raw_server) -> None:
    server = raw_server([
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
        b"HTTP/1.1 409 Conflict\r\nContent-Length: 3\r\n\r\nxyz"])
    transport = KeepAliveTransport()
    first = transport(HttpRequest("POST", f"{server.url}/a", {}, b"1"))
    assert (first.status, first.body) == (201, b"abcdefg")
    second = transport(HttpRequest("POST", f"{server.url}/b", {}, b"2"))
    assert (second.status, second.body) == (409, b"xyz")
    assert server.connections == 1  # kept alive across both


def test_connection_close_and_unframed_answers(raw_server) -> None:
    server = raw_server([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n"
                         b"\r\na", None])
    transport = KeepAliveTransport()
    assert transport(HttpRequest("GET", f"{server.url}/x", {}, b"")).body == b"a"
    unframed = raw_server([b"HTTP/1.0 200 OK\r\n\r\nuntil-eof"], close_after=True)
    answer = transport(HttpRequest("GET", f"{unframed.url}/y", {}, b""))
    assert answer.body == b"until-eof"


def test_a_dropped_kept_alive_connection_is_retried_once(raw_server) -> None:
    server = raw_server([OK, None, OK])  # the server drops the connection after one answer
    transport = KeepAliveTransport()
    assert transport(HttpRequest("POST", f"{server.url}/a", {}, b"1")).status == 200
    assert transport(HttpRequest("POST", f"{server.url}/a", {}, b"2")).status == 200
    assert server.connections == 2
    assert server.received[-1].endswith(b"\r\n\r\n2")


@pytest.mark.slow  # each case waits out the transport's read timeout
@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"SMTP ready\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n0\r\n\r\n",
])
def test_a_broken_answer_is_unreachable_not_a_crash(raw_server, answer: bytes) -> None:
    server = raw_server([answer], close_after=True)
    with pytest.raises(ChannelError) as caught:
        KeepAliveTransport(timeout=2)(HttpRequest("POST", f"{server.url}/a", {}, b"1"))
    assert caught.value.code == "unreachable" and not caught.value.definite


def test_a_malformed_header_line_is_not_taken_as_a_header(raw_server) -> None:
    """urllib3 keeps the answer and drops the line; the channel then refuses an answer
    without its signature header, as an unknown outcome."""
    server = raw_server([b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n"
                         b"\r\n{}"], close_after=True)
    answer = KeepAliveTransport(timeout=2)(HttpRequest("POST", f"{server.url}/a", {}, b"1"))
    assert answer.status == 200
    assert not any("no colon" in name for name in answer.headers)
    unreadable_length = raw_server([b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n"],
                                   close_after=True)
    answer = KeepAliveTransport(timeout=2)(HttpRequest("POST", f"{unreadable_length.url}/a",
                                                       {}, b"1"))
    assert answer.status == 200 and answer.body == b""  # read to the close: nothing


def test_a_refused_connection_and_a_header_injection_are_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ChannelError) as refused:
        KeepAliveTransport(timeout=2)(HttpRequest("GET", f"http://127.0.0.1:{port}/", {},
                                                  b""))
    assert refused.value.code == "unreachable"
    with pytest.raises(ChannelError) as injected:
        KeepAliveTransport(timeout=2)(HttpRequest(
            "GET", f"http://127.0.0.1:{port}/", {"X-A": "1\r\nX-B: 2"}, b""))
    assert injected.value.code in ("bad_request", "unreachable")
