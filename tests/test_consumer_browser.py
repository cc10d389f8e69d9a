"""The trace page's proof check, run in real headless Chromium on vectors made in Python.

The Python side (``market_protocol.merkle``, ``canonical_json``, ``signing``) is the
reference; the browser's ``verify.js`` must agree with it byte for byte, and must refuse
every kind of tampering a shopper could be shown.
"""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import canonical_json, merkle, signing
from service_base.testing import (
    CHROMIUM_ARGS,
    ServiceProcess,
    free_port,
    screenshot_dir,
    tracepay_command,
)


@pytest.fixture(scope="module")
def consumer_url(tmp_path_factory):
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("consumer") / "consumer.log"
    # Two granian workers: the production path, not a development server.
    argv = tracepay_command("consumer", "--port", str(port), "--gateway-url", dead,
                            "--bridge-url", dead, "--workers", "2")
    with ServiceProcess(argv, log_path=log, health_url=f"{url}/healthz"):
        yield url


@pytest.fixture(scope="module")
def verifier(browser, consumer_url):
    """A page on the consumer's own origin (a secure context on loopback) with verify.js."""
    page = browser.new_page()
    page.goto(f"{consumer_url}/scan")
    page.add_script_tag(url=f"{consumer_url}/static/verify.js")
    page.wait_for_function("() => window.TracepayVerify !== undefined")
    yield page
    page.close()


def _record(index: int) -> dict:
    return {"schema": "tracepay.trade_public/1", "trade_id": f"dev-1.{index}.x",
            "trace_code": f"code{index:08d}", "seller": {"name": "李记蔬菜", "org": "retail_market"},
            "lines": [{"name": "大白菜", "weight_g": 1250 + index, "origin": "山东寿光"}]}


def make_block(count: int, signers: dict[str, Ed25519PrivateKey], height: int = 7):
    """Proof items exactly as docs/protocol.md §7 describes, one per record."""
    canonicals = [canonical_json.dumps(_record(i)) for i in range(count)]
    leaves = [{"kind": "trade", "record_id": f"dev-1.{i}.x",
               "record_hash": hashlib.sha256(c).hexdigest(),
               "trace_keys": sorted([f"code{i:08d}", "stall-7"])}
              for i, c in enumerate(canonicals)]
    leaf_hashes = [merkle.leaf_hash(canonical_json.dumps(leaf)) for leaf in leaves]
    header = {"schema": "tracepay.block/1", "height": height, "prev_hash": "ab" * 32,
              "merkle_root": merkle.root(leaf_hashes).hex(), "bloom": "AAECAw", "bloom_k": 4,
              "time_ms": 1_763_700_000_000, "count": count}
    header_bytes = canonical_json.dumps(header)
    block = {"header": header, "block_hash": hashlib.sha256(header_bytes).hexdigest(),
             "signatures": [{"signer": name, "sig": signing.sign(key, header_bytes)}
                            for name, key in signers.items()]}
    return [{"record_canonical": c.decode(), "record_hash": leaf["record_hash"], "leaf": leaf,
             "leaf_hash": lh.hex(), "leaf_index": i, "tree_size": count,
             "audit_path": [h.hex() for h in merkle.inclusion_proof(leaf_hashes, i)],
             "block": block} for i, (c, leaf, lh) in enumerate(zip(canonicals, leaves,
                                                                    leaf_hashes, strict=True))]


@pytest.fixture(scope="module")
def signers():
    return {name: Ed25519PrivateKey.generate()
            for name in ("orderer", "production_base", "wholesale_market", "retail_market")}


@pytest.fixture(scope="module")
def keys(signers):
    return {name: signing.public_key_raw_b64(key) for name, key in signers.items()}


def _verify(page, proof, keys) -> dict:
    return page.evaluate("([p, k]) => TracepayVerify.verifyProof(p, k)", [proof, keys])


def test_js_canonical_json_is_byte_identical_to_python(verifier):
    values = [
        {"b": 1, "a": [3, {"z": None, "y": True, "x": False}], "c": "text"},
        {"kind": "trade", "record_id": "dev-1.9.abc", "record_hash": "00ff" * 16,
         "trace_keys": ["abcdefghijkl", "stall-7"]},
        {"B": 0, "a": -5, "_": "x", "A": [], "aa": {}, "quote": "say \"hi\"\\ \n\t\u0001"},
        {"schema": "tracepay.block/1", "height": 12, "prev_hash": "0" * 64, "bloom": "A-_b",
         "bloom_k": 7, "time_ms": 1_763_700_000_123, "count": 2000, "merkle_root": "1" * 64},
    ]
    for value in values:
        js = verifier.evaluate("v => TracepayVerify.canonicalJson(v)", value)
        assert js.encode() == canonical_json.dumps(value), value


def test_js_merkle_roots_match_python_for_every_leaf_of_trees_up_to_17(verifier):
    cases = []
    for size in range(1, 18):
        leaf_hashes = [merkle.leaf_hash(f"leaf {size}/{i}".encode()) for i in range(size)]
        for index in range(size):
            cases.append({"index": index, "size": size, "leaf": leaf_hashes[index].hex(),
                          "path": [h.hex() for h in merkle.inclusion_proof(leaf_hashes, index)],
                          "root": merkle.root(leaf_hashes).hex()})
    roots = verifier.evaluate("""async cases => {
        const V = TracepayVerify, out = [];
        for (const c of cases) {
          out.push(V.bytesToHex(await V.rootFromInclusion(c.index, c.size, V.hexToBytes(c.leaf), c.path)));
        }
        return out; }""", cases)
    assert roots == [case["root"] for case in cases]
    assert len(cases) == 153


def test_js_leaf_hash_uses_the_rfc6962_prefix(verifier):
    data = canonical_json.dumps({"kind": "trade", "record_id": "r", "record_hash": "00",
                                 "trace_keys": []})
    js = verifier.evaluate("async d => TracepayVerify.bytesToHex(await TracepayVerify.leafHash("
                           "new TextEncoder().encode(d)))", data.decode())
    assert js == merkle.leaf_hash(data).hex()
    assert js != hashlib.sha256(data).hexdigest()


def test_js_accepts_every_proof_of_a_correct_block(verifier, signers, keys):
    for proof in make_block(5, signers):
        assert _verify(verifier, proof, keys) == {"ok": True, "problems": []}
    (single,) = make_block(1, signers)
    assert _verify(verifier, single, keys)["ok"] is True


def _tampered(proof: dict, how: str, other_key: Ed25519PrivateKey) -> dict:
    bad = copy.deepcopy(proof)
    if how == "record":
        bad["record_canonical"] = bad["record_canonical"].replace("1252", "1352")
    elif how == "record_hash":
        bad["leaf"]["record_hash"] = "00" * 32
    elif how == "trace_keys":
        bad["leaf"]["trace_keys"] = [*bad["leaf"]["trace_keys"], "extra"]
    elif how == "path":
        first = bad["audit_path"][0]
        bad["audit_path"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    elif how == "short_path":
        bad["audit_path"] = bad["audit_path"][:-1]
    elif how == "index":
        bad["leaf_index"] = (bad["leaf_index"] + 1) % bad["tree_size"]
    elif how == "root":
        bad["block"]["header"]["merkle_root"] = "11" * 32
    elif how == "header":
        bad["block"]["header"]["height"] += 1
    elif how == "block_hash":
        bad["block"]["block_hash"] = "22" * 32
    elif how == "forged_signature":
        header_bytes = canonical_json.dumps(bad["block"]["header"])
        bad["block"]["signatures"][0]["sig"] = signing.sign(other_key, header_bytes)
    elif how == "unknown_signer":
        bad["block"]["signatures"][1]["signer"] = "mallory"
    elif how == "unsigned":
        bad["block"]["signatures"] = []
    elif how == "junk":
        bad["audit_path"] = ["not hex"]
    return bad


@pytest.mark.parametrize("how", [
    "record", "record_hash", "trace_keys", "path", "short_path", "index", "root", "header",
    "block_hash", "forged_signature", "unknown_signer", "unsigned", "junk",
])
def test_js_refuses_each_kind_of_tampering(verifier, signers, keys, how):
    proof = make_block(6, signers)[2]
    result = _verify(verifier, _tampered(proof, how, Ed25519PrivateKey.generate()), keys)
    assert result["ok"] is False, how
    assert result["problems"], how


def test_js_refuses_a_key_that_is_not_the_published_one(verifier, signers, keys):
    proof = make_block(3, signers)[0]
    wrong = dict(keys, orderer=signing.public_key_raw_b64(Ed25519PrivateKey.generate()))
    result = _verify(verifier, proof, wrong)
    assert result == {"ok": False, "problems": ["bad signature by orderer"]}


def _y4m_of_qr(text: str, path, size: int = 480) -> None:
    """A still camera feed showing a QR code, in the YUV4MPEG2 form Chromium's fake camera
    plays (grey Y plane, neutral chroma)."""
    import qrcode
    from PIL import Image

    image = qrcode.make(text, border=4).get_image().convert("L")
    frame = Image.new("L", (size, size), 255)
    side = int(size * 0.8)
    frame.paste(image.resize((side, side), Image.NEAREST), ((size - side) // 2,) * 2)
    chroma = bytes([128]) * ((size // 2) * (size // 2))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(5):
            out.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)


def _camera_page(browser, tmp_path, consumer_url: str, text: str):
    """A second Chromium (same Playwright driver) whose fake camera films ``text`` as a QR."""
    feed = tmp_path / "camera.y4m"
    _y4m_of_qr(text, feed)
    chromium = browser.browser_type.launch(executable_path="/usr/bin/chromium", args=[
        *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={feed}"])
    context = chromium.new_context(viewport={"width": 390, "height": 844},
                                   permissions=["camera"])
    page = context.new_page()
    page.goto(f"{consumer_url}/scan?lang=en")
    return chromium, page


def test_scan_page_reads_a_tracepay_code_from_the_camera_and_opens_it(browser, tmp_path,
                                                                        consumer_url):
    target = f"{consumer_url}/trace/abcdefghijkl"
    chromium, page = _camera_page(browser, tmp_path, consumer_url, target)
    try:
        with page.expect_navigation(url=f"{target}*", timeout=20_000):
            page.click("#scan-start")
        assert page.url.startswith(target)
    finally:
        chromium.close()


def test_scan_page_shows_but_does_not_follow_a_foreign_code(browser, tmp_path, consumer_url):
    foreign = "https://pay.example.invalid/q/AAECAwQF"  # a QR path, but not our gateway
    chromium, page = _camera_page(browser, tmp_path, consumer_url, foreign)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(consumer_url) else None)
    try:
        page.click("#scan-start")
        page.wait_for_selector("#scan-result:not([hidden])", timeout=20_000)
        assert page.inner_text("#scan-link") == foreign
        assert page.is_visible("#scan-foreign") and not page.is_visible("#scan-video")
        shots = screenshot_dir()
        page.screenshot(path=str(shots / "consumer-scan.png"), full_page=True)
        assert (shots / "consumer-scan.png").stat().st_size <= 300 * 1024
        assert page.url.startswith(f"{consumer_url}/scan")
        assert outside == []
        verdicts = page.evaluate("""() => [
            TracepayScan.classify(location.origin + '/stall/stall-7').open,
            TracepayScan.classify(document.getElementById('scan-card')
                                  .dataset.openOrigins + '/q/AAECAw').open,
            TracepayScan.classify('javascript:alert(1)').open,
            TracepayScan.classify('https://evil.example/phish').open]""")
        assert verdicts == [True, True, False, False]
        assert page.evaluate("TracepayScan.classify(location.origin + '/admin/x').open") is False
    finally:
        chromium.close()


def test_js_coverage_ties_the_proofs_to_what_the_page_shows(verifier, signers):
    proofs = make_block(4, signers)
    record = json.loads(proofs[0]["record_canonical"])
    good = {"proofs": proofs, "record": record, "trace_code": "code00000000",
            "upstream": ["dev-1.1.x", "dev-1.2.x"]}

    def coverage(data):
        return verifier.evaluate("d => TracepayVerify.coverage(d)", data)

    assert coverage(good) == []
    shown = copy.deepcopy(record)
    shown["lines"][0]["weight_g"] += 1000
    assert coverage({**good, "record": shown}) == [
        "the record shown differs from the record on the ledger"]
    assert coverage({**good, "trace_code": "code00000003"}) == [
        "the trace code is not among the record's on-chain keys"]
    assert coverage({**good, "upstream": ["dev-1.1.x", "farm-9.1.x"]}) == [
        "no proof for upstream sale farm-9.1.x"]
    assert coverage({**good, "proofs": proofs[1:]}) == ["no proof for the record shown"]


def test_js_without_ed25519_is_unable_not_tampered(verifier, signers, keys):
    proof = make_block(2, signers)[0]
    outcome = verifier.evaluate("""async ([p, k]) => {
        const original = crypto.subtle.importKey;
        crypto.subtle.importKey = () => Promise.reject(
            new DOMException('Ed25519 is not supported', 'NotSupportedError'));
        try {
            await TracepayVerify.verifyProof(p, k);
            return 'resolved';
        } catch (err) {
            return err.name;
        } finally {
            crypto.subtle.importKey = original;
        }}""", [proof, keys])
    assert outcome == "NotSupportedError"
    assert _verify(verifier, proof, keys)["ok"] is True


MISSING = "the record's bytes are missing, so the record is not proven"


def _verdict(page, data: dict) -> dict:
    return page.evaluate("""async d => {
        const results = await TracepayVerify.verifyAll(d.proofs, d.keys);
        return TracepayVerify.verdict(d, results); }""", data)


def test_js_a_proof_without_the_record_bytes_is_not_proven(verifier, signers, keys):
    proofs = make_block(3, signers)
    record = json.loads(proofs[0]["record_canonical"])
    bare = copy.deepcopy(proofs[0])
    bare["record_canonical"] = None
    assert _verify(verifier, bare, keys) == {"ok": False, "problems": [MISSING]}
    data = {"proofs": [bare, *proofs[1:]], "keys": keys, "record": record,
            "trace_code": "code00000000", "upstream": [], "labels": ["a", "b", "c"]}
    assert _verdict(verifier, data) == {"state": "unverified", "pending": False, "problems": [
        "the record shown is not proven (its bytes on the ledger are missing)", f"a: {MISSING}"]}
    assert _verdict(verifier, {**data, "proofs": proofs})["state"] == "verified"
    forged = {**data, "proofs": [bare, copy.deepcopy(proofs[1]), proofs[2]]}
    forged["proofs"][1]["record_canonical"] = forged["proofs"][1]["record_canonical"].replace(
        "1251", "1351")
    assert _verdict(verifier, forged)["state"] == "tampered"  # a failure outweighs the unproven


def test_js_requires_the_signature_of_every_pinned_signer(verifier, signers, keys):
    only_orderer = make_block(2, {"orderer": signers["orderer"]})[0]
    assert _verify(verifier, only_orderer, keys) == {"ok": False, "problems": [
        "block is not signed by production_base", "block is not signed by retail_market",
        "block is not signed by wholesale_market"]}
    two = make_block(2, {name: signers[name] for name in ("orderer", "retail_market")})[1]
    assert _verify(verifier, two, keys)["problems"] == [
        "block is not signed by production_base", "block is not signed by wholesale_market"]


def test_js_a_block_not_yet_signed_by_every_node_is_not_verified_yet_never_tampered(
        verifier, signers, keys):
    """Each node signs once it has validated the block: in that moment a genuine sale's
    page must say "not verified" (and look again), not accuse anyone; a signature that is
    there and wrong is still Tampered."""
    proofs = make_block(3, signers)
    record = json.loads(proofs[0]["record_canonical"])
    data = {"keys": keys, "record": record, "trace_code": "code00000000", "upstream": [],
            "labels": ["a", "b", "c"]}
    partly = make_block(3, {name: signers[name] for name in ("orderer", "retail_market")})
    record = json.loads(partly[0]["record_canonical"])
    waiting = _verdict(verifier, {**data, "record": record, "proofs": partly})
    assert waiting["state"] == "unverified" and waiting["pending"] is True
    assert "a: block is not signed by production_base" in waiting["problems"]
    no_proof_yet = _verdict(verifier, {**data, "proofs": proofs[1:]})
    assert no_proof_yet == {"state": "unverified", "pending": True,
                            "problems": ["no proof for the record shown"]}
    forged = copy.deepcopy(partly)
    header_bytes = canonical_json.dumps(forged[0]["block"]["header"])
    forged[0]["block"]["signatures"][0]["sig"] = signing.sign(Ed25519PrivateKey.generate(),
                                                              header_bytes)
    judged = _verdict(verifier, {**data, "record": record, "proofs": forged})
    assert judged["state"] == "tampered" and judged["pending"] is False


def test_js_checks_the_links_between_the_blocks_shown(verifier, signers):
    first = make_block(2, signers, height=7)[0]
    linked = make_block(2, signers, height=8)[0]
    linked_header = linked["block"]["header"]
    assert linked_header["prev_hash"] != first["block"]["block_hash"]

    def links(proofs):
        return verifier.evaluate("p => TracepayVerify.links(p)", proofs)

    assert links([first, linked]) == ["block 8 does not link to block 7"]
    good = copy.deepcopy(linked)
    good["block"]["header"]["prev_hash"] = first["block"]["block_hash"]
    assert links([first, good]) == []
    other = make_block(3, signers, height=7)[0]
    assert links([first, other]) == ["two different blocks at height 7 (a fork)"]
