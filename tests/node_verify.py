"""The trace page's proof check (consumer_app/static/verify.js) run by Node.js on the
exact ``proof-data`` a trace page carries: proofs and the keys the page pinned. Where no
browser is installed this still checks, with WebCrypto, what a shopper's phone would."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

VERIFY_JS = Path(__file__).resolve().parents[1] / "consumer_app" / "static" / "verify.js"

_HARNESS = r"""
const fs = require("fs");
globalThis.window = globalThis;
globalThis.document = {readyState: "complete", getElementById: () => null,
                       querySelector: () => null};
(0, eval)(fs.readFileSync(process.argv[1], "utf8"));
const data = JSON.parse(fs.readFileSync(0, "utf8"));
(async () => {
  const results = await window.TracepayVerify.verifyAll(data.proofs, data.keys || {});
  console.log(JSON.stringify({results: results,
                              verdict: window.TracepayVerify.verdict(data, results)}));
})();
"""


def node_binary() -> str | None:
    return shutil.which("node") or shutil.which("nodejs")


def proof_data(page_html: str) -> dict[str, Any]:
    """The ``<script id="proof-data">`` JSON of a trace page."""
    found = re.search(r'<script type="application/json" id="proof-data">(.*?)</script>',
                      page_html, re.S)
    assert found, "the trace page carries no proof-data"
    return json.loads(html.unescape(found.group(1)))


def verify_with_node(data: dict[str, Any]) -> dict[str, Any]:
    """verify.js's ``verifyAll`` and ``verdict`` over ``data``: {results, verdict}."""
    node = node_binary()
    assert node, "Node.js is needed to run verify.js"
    completed = subprocess.run([node, "-e", _HARNESS, str(VERIFY_JS)], input=json.dumps(data),
                               capture_output=True, text=True, timeout=60, check=True)
    return json.loads(completed.stdout)
