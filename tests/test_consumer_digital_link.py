"""GS1 Digital Link resolving on the shopper's side, against a real bridge and consumer app.

Both run as processes; a farm -> wholesale -> stall -> shopper market is posted to the bridge
with a GTIN for cabbage. Every Digital Link the bridge prints (trace answers, lot views,
stall stock, EPCIS classes) and the consumer serves (linkset anchors) is parsed with
``biip``, GS1 barcode and Digital Link parsing by others, to the GTIN and lot expected. A
label's URL then resolves to the trace page for a browser (checked in headless Chromium)
and to a GS1 linkset for a program, whose every link is followed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import biip
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from epcis_schema import errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from consumer_scenario import STALL, Market, trace_services  # noqa: E402

GTIN = "06901234567892"
LINKSET = "application/linkset+json"
GS1 = "https://gs1.org/voc/"


def parse_digital_link(url: str) -> tuple[str, str]:
    """(GTIN, lot) as biip reads a Digital Link URI; fails on anything else."""
    result = biip.parse(url)
    link = result.gs1_digital_link_uri
    assert link is not None, f"{url}: {result.gs1_digital_link_uri_error}"
    strings = {element.ai.ai: element.value for element in link.element_strings}
    assert set(strings) == {"01", "10"}, strings
    return strings["01"], strings["10"]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("digital-link")
    key = Ed25519PrivateKey.generate()
    with trace_services(root, key) as (bridge_url, consumer_url):
        response = requests.post(f"{bridge_url}/v1/catalogue", timeout=10, json={
            "code": "cabbage", "name": "Chinese cabbage", "synonyms": ["大白菜"],
            "gtin": "6901234567892"})
        assert response.status_code in (200, 201), response.text
        codes = Market(key).load(bridge_url, shoppers=2)
        yield {"bridge": bridge_url, "consumer": consumer_url, "codes": codes}


def _on_consumer(system, url: str) -> str:
    """A printed URL (the bridge's public_url host) as served by the test's consumer."""
    parts = urlsplit(url)
    return system["consumer"] + parts.path


def _printed_links(system) -> list[str]:
    bridge = system["bridge"]
    trace = requests.get(f"{bridge}/v1/trace/{system['codes'][0]}", timeout=10).json()
    links = list(trace["lot_urls"].values())
    for lot_id in trace["lot_urls"]:
        links += requests.get(f"{bridge}/v1/lots/{lot_id}", timeout=10).json()["urls"].values()
    stock = requests.get(f"{bridge}/v1/stalls/{STALL.merchant_id}/stock", timeout=10).json()
    links += [lot["url"] for lot in stock["lots"]]
    document = requests.get(f"{bridge}/v1/epcis?trace_code={system['codes'][0]}",
                            timeout=10).json()
    links += [q["epcClass"] for e in document["epcisBody"]["eventList"]
              for q in e["quantityList"]]
    return [link for link in dict.fromkeys(links) if "/01/" in link]


def test_every_printed_digital_link_parses_with_biip(system):
    links = _printed_links(system)
    assert len(links) >= 4  # shopper, stall, wholesale and farm lots of cabbage
    for link in links:
        gtin, lot = parse_digital_link(link)
        assert gtin == GTIN and link.endswith(f"/01/{GTIN}/10/{lot}")
        # the lot leads back to the trade that made it, whose trace names the same lot
        lot_id = lot
        assert requests.get(f"{system['bridge']}/v1/lots/{lot_id}", timeout=10
                            ).json()["lot_ids"] == [lot_id]
    # loose produce without a GTIN gets the bridge's own lot URL, not a fake Digital Link
    trace = requests.get(f"{system['bridge']}/v1/trace/{system['codes'][0]}", timeout=10).json()
    assert any("/v1/lots/" in url for url in trace["lot_urls"].values())


def test_a_browser_lands_on_the_trace_page(system, browser):
    shopper_lot = f"{system['codes'][0]}-0"
    url = f"{system['consumer']}/01/{GTIN}/10/{shopper_lot}"
    answer = requests.get(url, headers={"Accept": "text/html"}, allow_redirects=False,
                          timeout=10)
    assert answer.status_code == 307
    assert answer.headers["Location"].endswith(f"/trace/{system['codes'][0]}")
    assert 'rel="linkset"' in answer.headers["Link"]
    page = browser.new_page()
    try:
        page.goto(url, wait_until="load")
        assert urlsplit(page.url).path == f"/trace/{system['codes'][0]}"
        assert system["codes"][0] in page.content()
    finally:
        page.close()


def test_a_farm_label_resolves_to_the_farm_trade(system):
    url = f"{system['consumer']}/01/{GTIN}/10/F-1119?lang=en"
    answer = requests.get(url, headers={"Accept": "text/html"}, allow_redirects=False,
                          timeout=10)
    farm_code = requests.get(f"{system['bridge']}/v1/lots/F-1119", timeout=10
                             ).json()["lot_ids"][0].rsplit("-", 1)[0]
    assert answer.status_code == 307
    assert answer.headers["Location"].endswith(f"/trace/{farm_code}?lang=en")


@pytest.mark.parametrize("ask", [{"headers": {"Accept": LINKSET}},
                                 {"headers": {"Accept": "application/json"}},
                                 {"params": {"linkType": "linkset"}}])
def test_a_program_gets_the_linkset_and_every_link_works(system, ask):
    code = system["codes"][1]
    url = f"{system['consumer']}/01/{GTIN}/10/{code}-0"
    answer = requests.get(url, allow_redirects=False, timeout=10, **ask)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].split(";")[0] in (LINKSET, "application/json")
    [links] = answer.json()["linkset"]
    assert links["anchor"] == url
    assert parse_digital_link(links["anchor"]) == (GTIN, f"{code}-0")
    [default] = links[f"{GS1}defaultLink"]
    page = requests.get(default["href"], headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200 and code in page.text and default["type"] == "text/html"
    [epcis] = links[f"{GS1}epcis"]
    document = requests.get(epcis["href"], timeout=10)
    assert document.headers["Content-Type"].startswith("application/ld+json")
    assert errors(document.json()) == []
    classes = {q["epcClass"] for e in document.json()["epcisBody"]["eventList"]
               for q in e["quantityList"]}
    assert f"https://id.gs1.org/01/{GTIN}/10/{code}-0" in classes
    [proofs] = links["urn:tracepay:voc:ledgerProofs"]
    body = requests.get(proofs["href"], timeout=10).json()
    assert body["trace_code"] == code and body["proofs"]
    assert body["record"]["trace_code"] == code


@pytest.mark.parametrize(("path", "status", "code"), [
    (f"/01/{GTIN[:-1]}3/10/L1", 400, "bad_digital_link"),     # wrong check digit
    (f"/01/{GTIN}/10/{'x' * 21}", 400, "bad_digital_link"),   # AI 10 holds at most 20
    (f"/01/{GTIN}/10/no-such-lot", 404, "unknown_lot"),
    ("/01/4006381333931/10/F-1119", 404, "unknown_lot"),      # a lot of another GTIN
    ("/epcis/nolot", 400, "malformed_lot_id"),
    ("/epcis/zzzz-0", 404, "unknown_lot"),
    ("/proofs/zzzz", 404, "unknown_trace_code"),
])
def test_bad_and_unknown_links_are_json_errors(system, path, status, code):
    answer = requests.get(system["consumer"] + path, headers={"Accept": "application/json"},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == status
    assert answer.json() == {"error": code, "message": answer.json()["message"]}


def test_an_unknown_lot_is_a_page_for_a_browser(system):
    answer = requests.get(f"{system['consumer']}/01/{GTIN}/10/no-such-lot",
                          headers={"Accept": "text/html"}, timeout=10)
    assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/html")
