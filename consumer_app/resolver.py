"""GS1 Digital Link resolving: the URL on a product label, ``/01/<GTIN>/10/<lot>``.

A shopper's phone asks for HTML and is sent (307, as GS1 resolvers do) to the trace page of
the trade that made the lot. A program asks for JSON (``Accept: application/linkset+json``
or ``application/json``, or ``?linkType=linkset``) and gets the lot's links as a GS1
resolver linkset (RFC 9264): the trace pages (``gs1:defaultLink``, ``gs1:traceability``),
the lot's EPCIS 2.0 events (``gs1:epcis``) and the ledger's inclusion proofs. The EPCIS and
proof links are served here too, read from the bridge, so a partner needs only this host.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, redirect, request, url_for

from .page_errors import PageError
from .upstream import Upstream, UpstreamNotFound, UpstreamUnavailable

__all__ = ["blueprint", "gtin14", "LINKSET_TYPE", "GS1_VOC", "PROOFS_LINK_TYPE"]

blueprint = Blueprint("resolver", __name__)

LINKSET_TYPE = "application/linkset+json"
GS1_VOC = "https://gs1.org/voc/"
#: No GS1 link type names ledger proofs: ours is an extension relation (RFC 8288 §2.1.2).
PROOFS_LINK_TYPE = "urn:tracepay:voc:ledgerProofs"
#: GS1 AI (10) batch/lot, the safe subset of CSET 82 the bridge prints.
_LOT = re.compile(r"^[A-Za-z0-9_.:-]{1,20}$")
_LOT_ID = re.compile(r"^([A-Za-z0-9]{1,32})-\d{1,3}$")


def gtin14(text: str) -> str:
    """GTIN-8/12/13/14 as 14 digits; ValueError unless the GS1 check digit is right."""
    if not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise ValueError("GTIN must be 8, 12, 13 or 14 digits")
    body = text.zfill(14)
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(body[:-1]))
    if (10 - total % 10) % 10 != int(body[-1]):
        raise ValueError(f"GTIN {text} has a wrong check digit")
    return body


def _upstream() -> Upstream:
    return current_app.extensions["tracepay_upstream"]


def _base() -> str:
    return (current_app.config["TRACEPAY"]["public_url"] or request.host_url).rstrip("/")


def _bad(code: str, message: str) -> PageError:
    return PageError(400, code, message, title_key="bad_request_title")


def _not_found(code: str, what: str) -> PageError:
    return PageError(404, code, f"no {what}", title_key="not_found_title",
                     text_key="not_found_trace", html_by_default=True)


def _read(call: Any, what: str, code: str = "unknown_lot") -> Any:
    try:
        return call()
    except UpstreamNotFound:
        raise _not_found(code, what) from None
    except UpstreamUnavailable as exc:
        current_app.logger.warning("upstream unavailable: %s", exc)
        raise PageError(503, "bridge_unavailable", "the bridge did not answer; try again "
                        "shortly", title_key="unavailable_title",
                        text_key="unavailable_detail", html_by_default=True) from None


def _trace_codes(lot_ids: Any) -> list[tuple[str, str]]:
    """(lot id, trace code of the trade that made it): a lot id is ``<trace code>-<line>``."""
    out = []
    for lot_id in lot_ids if isinstance(lot_ids, list) else []:
        match = _LOT_ID.match(lot_id) if isinstance(lot_id, str) else None
        if match:
            out.append((lot_id, match.group(1)))
    return out


def _wants_linkset() -> bool:
    if request.args.get("linkType") in ("linkset", "all"):
        return True
    accept = request.accept_mimetypes
    machine = max(accept[LINKSET_TYPE], accept["application/json"])
    return any(m in (LINKSET_TYPE, "application/json") for m, _ in accept) and \
        machine > accept["text/html"]


def linkset(anchor: str, base: str, lots: list[tuple[str, str]]) -> dict[str, Any]:
    """The RFC 9264 linkset of one Digital Link: every lot id the label names."""
    pages = [{"href": f"{base}/trace/{code}", "title": f"Trace of lot {lot_id}",
              "type": "text/html", "hreflang": ["zh", "en"]} for lot_id, code in lots]
    return {"linkset": [{
        "anchor": anchor,
        f"{GS1_VOC}defaultLink": pages[:1],
        f"{GS1_VOC}traceability": pages,
        f"{GS1_VOC}epcis": [{"href": f"{base}/epcis/{lot_id}", "title": "EPCIS 2.0 events",
                             "type": "application/ld+json"} for lot_id, _code in lots],
        PROOFS_LINK_TYPE: [{"href": f"{base}/proofs/{code}",
                            "title": "Ledger inclusion proofs", "type": "application/json"}
                           for code in dict.fromkeys(code for _lot, code in lots)],
    }]}


@blueprint.get("/01/<gtin>/10/<lot>")
def digital_link(gtin: str, lot: str) -> Any:
    try:
        gtin = gtin14(gtin)
    except ValueError as exc:
        raise _bad("bad_digital_link", str(exc)) from None
    if not _LOT.match(lot):
        raise _bad("bad_digital_link", "lot must be 1-20 of letters, digits, _ . : -")
    view = _read(lambda: _upstream().digital_link(gtin, lot), f"lot {lot} of GTIN {gtin}")
    lots = _trace_codes(view.get("lot_ids") if isinstance(view, dict) else None)
    if not lots:
        raise _not_found("unknown_lot", f"lot {lot} of GTIN {gtin}")
    base = _base()
    anchor = f"{base}/01/{gtin}/10/{quote(lot, safe='')}"
    link_header = f'<{anchor}?linkType=linkset>; rel="linkset"; type="{LINKSET_TYPE}"'
    if _wants_linkset():
        accept = request.accept_mimetypes
        mimetype = "application/json" if accept["application/json"] > accept[LINKSET_TYPE] \
            else LINKSET_TYPE
        return Response(json.dumps(linkset(anchor, base, lots), ensure_ascii=False),
                        mimetype=mimetype, headers={"Link": link_header})
    args: dict[str, Any] = {"lang": request.args["lang"]} if "lang" in request.args else {}
    response = redirect(url_for("pages.trace", code=lots[0][1], **args), code=307)
    response.headers["Link"] = link_header
    return response


@blueprint.get("/epcis/<lot_id>")
def epcis(lot_id: str) -> Any:
    """The lot's EPCIS 2.0 document, as the bridge exports it."""
    if not _LOT_ID.match(lot_id):
        raise _bad("malformed_lot_id", "a lot id is <trace code>-<line>")
    document = _read(lambda: _upstream().epcis_for_lot(lot_id), f"lot {lot_id}")
    return Response(json.dumps(document, ensure_ascii=False), mimetype="application/ld+json")


@blueprint.get("/proofs/<code>")
def proofs(code: str) -> Any:
    """The inclusion proofs the trace page checks, for a program to check the same way."""
    if not re.match(r"^[A-Za-z0-9]{1,32}$", code):
        raise _bad("malformed_trace_code", "a trace code is letters and digits")
    answer = _read(lambda: _upstream().trace(code), f"trace code {code}",
                   "unknown_trace_code")
    return Response(json.dumps({"trace_code": code, "record": answer.get("record"),
                                "proofs": answer.get("proofs") or []}, ensure_ascii=False),
                    mimetype="application/json")
