"""A fake ledger bridge for the trace page's tests: it relays a real bridge and alters each
trace answer in transit, as a compromised server between the ledger and the shopper would.

Run as its own process: ``python tests/fake_bridge.py --port P --upstream URL --alter HOW``.
``HOW`` is ``strip_bytes`` (every proof loses its record bytes), ``two_signers`` (every
block keeps only the orderer's and one organisation's signature) or ``two_signers_first``
(only the first trace answer does, as in the moment before every node signed a block).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


def alter(answer: dict[str, Any], how: str) -> dict[str, Any]:
    for proof in answer.get("proofs") or []:
        if how == "strip_bytes":
            proof["record_canonical"] = None
        elif how in ("two_signers", "two_signers_first"):
            proof["block"]["signatures"] = [
                s for s in proof["block"]["signatures"]
                if s["signer"] in ("orderer", "retail_market")]
    return answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--alter", choices=("strip_bytes", "two_signers", "two_signers_first"),
                        required=True)
    args = parser.parse_args()
    session = requests.Session()
    session.trust_env = False
    traces_answered = [0]

    class Relay(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
            if self.path == "/healthz":
                status, body = 200, b'{"ok": true}'
            else:
                upstream = session.get(args.upstream + self.path, timeout=10)
                status, body = upstream.status_code, upstream.content
                if status == 200 and self.path.startswith("/v1/trace/"):
                    traces_answered[0] += 1
                    if args.alter != "two_signers_first" or traces_answered[0] == 1:
                        body = json.dumps(alter(upstream.json(), args.alter)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Relay).serve_forever()


if __name__ == "__main__":
    main()
