"""The channel transport: a request's head and body leave in one write, over kept-alive
connections, against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aggregation_gateway.channels import http_transport
from aggregation_gateway.channels.base import HttpRequest
from aggregation_gateway.channels.http_transport import KeepAliveTransport


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
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


def test_head_and_body_are_one_write(echo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_send = http_transport._OneWriteConnection.send

    def counting_send(self, data):  # type: ignore[no-untyped-def]
        writes.append(bytes(data))
        return real_send(self, data)

    monkeypatch.setattr(http_transport._OneWriteConnection, "send", counting_send)
    transport = KeepAliveTransport()
    body = b'{"out_trade_no":"p1","amount_fen":100}'
    for _ in range(3):  # the same kept-alive connection each time
        answer = transport(HttpRequest("POST", f"{echo_url}/v1/orders",
                                       {"Content-Type": "application/json"}, body))
        assert answer.status == 200 and answer.body == body
    assert len(writes) == 3
    assert all(write.startswith(b"POST /v1/orders HTTP/1.1\r\n") and write.endswith(
        b"\r\n\r\n" + body) for write in writes)
