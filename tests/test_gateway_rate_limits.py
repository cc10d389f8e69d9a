"""Rate limits keyed where abuse is: a code, a terminal, a flood from one address; never a
market's paying shoppers who share one address. Against a real gateway on a loopback port
and the sandbox platform as its own process; shoppers from their own loopback addresses."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_gateway_support import MANAGER, ServedGateway, platform  # noqa: F401

from aggregation_gateway.rate_limits import LIMIT_NAMES
from aggregation_gateway.settings import GATEWAY_SETTINGS
from tracepay.demo_shoppers import SimulatedShopper, loopback_address, source_bound_session

JSON = {"Accept": "application/json"}
#: The production defaults of every limit (the support fixture switches them off).
DEFAULT_LIMITS = {s.name: s.default for s in GATEWAY_SETTINGS if s.name in LIMIT_NAMES}


def _limited(body: dict, response) -> None:
    assert response.status_code == 429, response.text
    assert body["error"] == "rate_limited"
    assert int(response.headers["Retry-After"]) == body["retry_after_s"] >= 1


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path,
                                                              platform) -> None:  # noqa: F811
    # The peer (127.0.0.1) is not a trusted proxy: each request claims another client
    # address, and all of them are still counted under the peer's own.
    with ServedGateway(tmp_path, platform.url, scan_limit_per_address="2/hour",
                       trusted_proxies="10.9.9.9") as gw:
        terminal = gw.terminal()
        answers = [gw.scan(terminal.charge()[0], **{"X-Forwarded-For": f"198.51.100.{i}",
                                                   "Forwarded": f"for=198.51.100.{i}"})
                   for i in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        _limited(answers[2].json(), answers[2])


def test_a_trusted_proxy_forwards_each_shoppers_address(tmp_path: Path,
                                                        platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_limit_per_address="2/hour",
                       trusted_proxies="127.0.0.0/8") as gw:
        terminal = gw.terminal()
        distinct = [gw.scan(terminal.charge()[0], **{"X-Forwarded-For": f"198.51.100.{i}"})
                    for i in range(4)]
        assert [a.status_code for a in distinct] == [200] * 4
        # The proxy appends the real peer to whatever the phone claimed: only the last
        # hop is believed, so a phone cannot spread itself over made-up addresses.
        same = [gw.scan(terminal.charge()[0],
                        **{"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.77"})
                for i in range(3)]
        assert [a.status_code for a in same] == [200, 200, 429]


def test_shoppers_behind_one_address_are_not_refused_at_market_peak(
        tmp_path: Path, platform) -> None:  # noqa: F811
    """A 25-stall row of a market at its busiest hour behind one Wi-Fi address: every stall rings
    up sales, every phone opens its code (the page, then the payment), 100 scans a
    second from one address, all under the production defaults."""
    with ServedGateway(tmp_path, platform.url, **DEFAULT_LIMITS) as gw:
        stalls = [gw.terminal(f"stall-{n}") for n in range(25)]
        codes = [stall.charge()[0] for stall in stalls for _ in range(12)]
        # Some shoppers reload: every code is opened as a page and then as JSON.
        requests_to_send = [(url, accept) for url in codes
                            for accept in ("text/html", "application/json")]
        statuses: list[int] = []
        lock = threading.Lock()

        def open_code(item: tuple[str, str]) -> None:
            response = gw.http.get(item[0], headers={"Accept": item[1]},
                                   allow_redirects=False)
            with lock:
                statuses.append(response.status_code)

        with ThreadPoolExecutor(max_workers=8) as pool:
            for item in requests_to_send:
                pool.submit(open_code, item)
                time.sleep(0.01)  # the market's pace: about 100 scans a second
        assert len(statuses) == 600
        assert statuses.count(429) == 0
        assert set(statuses) == {200}


def test_a_replayed_code_is_refused_whoever_sends_it(tmp_path: Path,
                                                     platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_limit_per_token="3/hour") as gw:
        url, _ = gw.terminal().charge()
        answers = []
        for index in range(5):  # five "phones", five addresses
            with source_bound_session(loopback_address(index)) as phone:
                answers.append(phone.get(url, headers=JSON, timeout=10))
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        _limited(answers[3].json(), answers[3])
        # Another code of the same terminal is untouched.
        assert gw.scan(gw.terminal("stall-8").charge()[0]).status_code == 200


def test_forged_codes_cannot_spend_a_stalls_budget(tmp_path: Path,
                                                   platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_limit_per_device="2/hour") as gw:
        terminal = gw.terminal()
        forged = [gw.scan(terminal.charge(key=b"\x01" * 32)[0]) for _ in range(5)]
        assert {a.json()["error"] for a in forged} == {"bad_mac"}
        genuine = [gw.scan(terminal.charge()[0]) for _ in range(3)]
        assert [a.status_code for a in genuine] == [200, 200, 429]
        _limited(genuine[2].json(), genuine[2])


def test_a_scraper_behind_the_markets_address_does_not_block_its_shoppers(
        tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_refusals_per_address="3/hour") as gw:
        terminal = gw.terminal()
        refused = [gw.scan(terminal.charge(issued_at=int(time.time()) - 3600)[0])
                   for _ in range(5)]
        # Three refusals with their reason, then only a bare 429: nothing more to learn.
        assert [a.status_code for a in refused] == [410, 410, 410, 429, 429]
        _limited(refused[3].json(), refused[3])
        # A shopper's genuine code from the same address is served.
        assert gw.scan(terminal.charge()[0]).status_code == 200


def test_a_shopper_waits_out_retry_after_and_pays(tmp_path: Path,
                                                  platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_limit_per_token="1 per 2 seconds") as gw:
        url, _ = gw.terminal().charge()
        assert gw.scan(url).status_code == 200  # the code's one scan in this window
        shopper = SimulatedShopper("shopper-1", loopback_address(7))
        outcome = shopper.pay(url)
        assert outcome["ok"], outcome
        assert outcome["refusals"] >= 1 and shopper.waited_s >= 1
        gw.wait_status(outcome["payment_id"], "paid")


def test_a_manager_is_never_locked_out_by_someone_elses_guessing(
        tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, login_failures_per_account="3/hour",
                       login_failures_per_account_address="3/hour") as gw:
        url = f"{gw.url}/v1/devices"
        with source_bound_session(loopback_address(1)) as attacker:
            guesses = [attacker.get(url, auth=(MANAGER[0], f"guess-{i}"), timeout=10)
                       for i in range(5)]
            assert [g.status_code for g in guesses] == [401, 401, 401, 429, 429]
            _limited(guesses[3].json(), guesses[3])
            assert attacker.get(url, auth=MANAGER, timeout=10).status_code == 429
        with source_bound_session(loopback_address(2)) as manager:
            assert manager.get(url, auth=MANAGER, timeout=10).status_code == 200


def test_the_limits_hold_across_gateway_workers(tmp_path: Path, platform) -> None:  # noqa: F811
    """Two app instances on one data directory (two workers) count in one store."""
    from aggregation_gateway.app import create_app

    with ServedGateway(tmp_path, platform.url, scan_limit_per_token="2/hour") as gw:
        url, _ = gw.terminal().charge()
        second = create_app(gateway=gw.gateway).test_client()
        path = url.split(gw.url, 1)[1]
        assert gw.scan(url).status_code == 200
        assert second.get(path, headers=JSON).status_code == 200
        assert gw.scan(url).status_code == 429
        assert second.get(path, headers=JSON).status_code == 429


@pytest.mark.parametrize(("locale", "words"), [("zh-CN", "请稍候再试"),
                                               ("en-US", "Please try again shortly")])
def test_the_shoppers_page_says_when_and_retries_once(  # noqa: F811
        tmp_path: Path, platform, browser, locale: str, words: str) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, scan_limit_per_token="1 per 3 seconds") as gw:
        url, _ = gw.terminal().charge()
        assert gw.scan(url).status_code == 200
        page = browser.new_page(locale=locale)
        try:
            first = page.goto(url)
            assert first is not None and first.status == 429
            assert first.headers["retry-after"] == page.inner_text("#retry-after")
            assert words in page.inner_text("h1")
            # The page tries again by itself once the wait is over, and then pays.
            page.wait_for_url("**retried=1**", timeout=15_000)
            page.wait_for_selector("text=¥9.50", timeout=15_000)
        finally:
            page.close()
        # A second refusal does not loop: the retried page waits for the shopper.
        gw.scan(url)
        again = gw.http.get(url + "?retried=1", headers={"Accept": "text/html",
                                                         "Accept-Language": locale})
        assert again.status_code == 429 and "setTimeout" not in again.text
        assert again.headers["Retry-After"]
