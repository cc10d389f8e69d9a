"""Cross-site writes and hostile form input against a real gateway on a loopback port.

* A page on another origin cannot make the manager's browser (which holds the Basic
  credentials) revoke a terminal through the JSON API: shown in headless Chromium.
* Every form field of the manager pages, filled with hostile values (non-ASCII and
  invalid UTF-8, control characters, huge, the ends of the calendar), gets a 4xx or a
  normal answer, never a 500.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
import requests
from test_gateway_support import (  # noqa: F401
    MANAGER,
    ServedGateway,
    form_token,
    manager_login,
    platform,
)

from service_base.testing import free_port

HOSTILE: list[bytes] = [
    b"", b" ", b"\x00", "é".encode() * 2000, b"\xed\xa0\x80", b"\xff\xfe", b"\xc3",
    "令牌".encode(), b"9999-12-31", b"0001-01-01", b"2026-02-30", b"../../etc/passwd",
    b"<script>alert(1)</script>", b"%s%n", b"1e309", b"-1", b"a" * 70_000,
]


@pytest.fixture
def gw(tmp_path: Path, platform) -> ServedGateway:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as served:
        yield served


_csrf = form_token
_login = manager_login


class _EvilSite:
    """Another origin (another port) serving a page that posts a form to the gateway."""

    def __init__(self, target: str) -> None:
        page = (f'<form id="f" method="post" action="{target}"></form>'
                '<script>document.getElementById("f").submit()</script>').encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_another_sites_page_cannot_revoke_a_terminal_with_the_managers_credentials(
        gw: ServedGateway, browser) -> None:
    gw.terminal(device_id="dev-victim")
    evil = _EvilSite(f"{gw.url}/v1/devices/dev-victim/revoke")
    context = browser.new_context(http_credentials={"username": MANAGER[0],
                                                    "password": MANAGER[1]})
    try:
        page = context.new_page()
        with page.expect_response(lambda r: "/revoke" in r.url) as answer:
            page.goto(evil.url)
        assert answer.value.status == 403
        assert "cross_origin" in answer.value.text()
    finally:
        context.close()
        evil.close()
    devices = gw.http.get(f"{gw.url}/v1/devices", auth=MANAGER).json()["devices"]
    assert {d["device_id"]: d["status"] for d in devices}["dev-victim"] == "active"


def test_scripts_and_same_origin_pages_still_write(gw: ServedGateway) -> None:
    gw.terminal(device_id="dev-a")
    gw.terminal(device_id="dev-b")
    script = gw.http.post(f"{gw.url}/v1/devices/dev-a/revoke", auth=MANAGER)
    assert script.status_code == 200  # no Origin: curl, the tracepay CLI
    own = gw.http.post(f"{gw.url}/v1/devices/dev-b/revoke", auth=MANAGER,
                       headers={"Origin": gw.url, "Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 200
    for headers in ({"Origin": "http://127.0.0.1:9"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"}):
        refused = gw.http.post(f"{gw.url}/v1/devices/dev-a/rotate", auth=MANAGER,
                               headers=headers)
        assert refused.status_code == 403 and refused.json()["error"] == "cross_origin"
    # Reads are not writes: a cross-site GET is answered (and shows nothing without auth).
    assert gw.http.get(f"{gw.url}/v1/devices", auth=MANAGER,
                       headers={"Origin": "http://127.0.0.1:9"}).status_code == 200


def _post_form(session: requests.Session, url: str, fields: dict[str, bytes]) -> requests.Response:
    body = "&".join(f"{name}={quote_from_bytes(value)}" for name, value in fields.items())
    return session.post(url, data=body.encode(), allow_redirects=False,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})


def test_a_non_ascii_or_broken_form_token_is_a_403_not_a_500(gw: ServedGateway) -> None:
    anonymous = requests.Session()
    anonymous.trust_env = False
    anonymous.get(f"{gw.url}/manager/login")
    logged_in, _csrf_token = _login(gw)
    for token in (b"\xe4\xbb\xa4\xe7\x89\x8c", b"\xed\xa0\x80", b"\xff", b"a" * 5000, b""):
        login = _post_form(anonymous, f"{gw.url}/manager/login", {
            "username": MANAGER[0].encode(), "password": MANAGER[1].encode(),
            "csrf_token": token})
        assert login.status_code == 403 and login.json()["error"] == "csrf_failed"
        enrol = _post_form(logged_in, f"{gw.url}/manager/devices", {
            "merchant_id": b"stall-1", "merchant_name": b"x", "org": b"retail_market",
            "csrf_token": token})
        assert enrol.status_code == 403 and enrol.json()["error"] == "csrf_failed"


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "3000-01-01",
                                 "２０２６-01-01", "2026-1-01"])
def test_the_ends_of_the_calendar_are_a_400(gw: ServedGateway, day: str) -> None:
    logged_in, csrf = _login(gw)
    for path in ("/manager/settlement", "/manager/settlement.csv",
                 "/manager/reconciliation"):
        answer = logged_in.get(f"{gw.url}{path}", params={"date": day})
        assert answer.status_code == 400 and answer.json()["error"] == "bad_date", path
    run = logged_in.post(f"{gw.url}/manager/reconciliation", data={"date": day,
                                                                    "csrf_token": csrf})
    assert run.status_code == 400 and run.json()["error"] == "bad_date"


def test_every_manager_form_field_survives_hostile_values(gw: ServedGateway) -> None:
    logged_in, csrf = _login(gw)
    anonymous = requests.Session()
    anonymous.trust_env = False
    login_csrf = _csrf(anonymous.get(f"{gw.url}/manager/login").text)
    forms = {
        "/manager/login": (anonymous, {"username": b"manager", "password": b"x",
                                       "csrf_token": login_csrf.encode()}),
        "/manager/devices": (logged_in, {"merchant_id": b"stall-1", "merchant_name": b"Li",
                                         "org": b"retail_market", "device_id": b"",
                                         "csrf_token": csrf.encode()}),
        "/manager/reconciliation": (logged_in, {"date": b"2026-01-01",
                                                "csrf_token": csrf.encode()}),
        "/manager/devices/dev-none/revoke": (logged_in, {"csrf_token": csrf.encode()}),
        "/manager/devices/dev-none/rotate": (logged_in, {"csrf_token": csrf.encode()}),
    }
    statuses: dict[tuple[str, str, bytes], int] = {}
    for path, (session, good) in forms.items():
        for field in good:
            for value in HOSTILE:
                answer = _post_form(session, f"{gw.url}{path}", {**good, field: value})
                statuses[(path, field, value[:20])] = answer.status_code
                assert answer.status_code < 500, (path, field, value[:40], answer.text[:300])
                if answer.status_code >= 400:
                    assert answer.headers["Content-Type"].startswith(
                        ("application/json", "text/html")), (path, field)
    # The fuzzing reached the views: some values were accepted, some refused with a 4xx.
    assert any(200 <= s < 400 for s in statuses.values())
    assert any(400 <= s < 500 for s in statuses.values())
    # Query parameters of the pages, too.
    for value in HOSTILE:
        for path in ("/manager/settlement", "/manager/settlement.csv",
                     "/manager/reconciliation", "/manager/"):
            answer = logged_in.get(f"{gw.url}{path}?date={quote_from_bytes(value)}"
                                   f"&notice={quote_from_bytes(value)}")
            assert answer.status_code < 500, (path, value[:40])
