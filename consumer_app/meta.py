"""Service endpoints every tracepay process serves: ``/healthz`` and ``/openapi.json``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, current_app, jsonify

# The version comes from the installed distribution, not from the ``tracepay`` package:
# services sit below the command line and must not import it.
try:
    __version__ = version("tracepay")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["blueprint", "openapi_document"]

blueprint = Blueprint("meta", __name__)


@blueprint.get("/healthz")
def healthz() -> Any:
    """Liveness only: the pages degrade to a retry page when an upstream is down."""
    settings = current_app.config["TRACEPAY"]
    return jsonify({"status": "ok", "service": "consumer", "version": __version__,
                    "gateway_url": settings["gateway_url"], "bridge_url": settings["bridge_url"]})


@blueprint.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


def _page(summary: str, param: str | None, *, not_found: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [{"name": "lang", "in": "query", "required": False,
                        "schema": {"type": "string", "enum": ["zh", "en"]}}],
        "responses": {"200": {"description": "HTML page",
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }
    if param:
        operation["parameters"].insert(0, {
            "name": param, "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"}})
        operation["responses"]["400"] = {"$ref": "#/components/responses/Error"}
    if not_found:
        operation["responses"]["404"] = {"$ref": "#/components/responses/Error"}
        operation["responses"]["503"] = {"$ref": "#/components/responses/Error"}
    return {"get": operation}


def _digital_link() -> dict[str, Any]:
    """GS1 Digital Link resolver: a browser is redirected, a program gets the linkset."""
    path = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in ("gtin", "lot")]
    link_type = {"name": "linkType", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["linkset", "all"]}}
    error = {"$ref": "#/components/responses/Error"}
    return {"get": {
        "summary": "GS1 Digital Link of a lot: 307 to its trace page, or the GS1 linkset "
                   "(Accept: application/linkset+json or application/json, or ?linkType=linkset).",
        "parameters": [*path, link_type],
        "responses": {"200": {"description": "RFC 9264 linkset", "content": {
                          "application/linkset+json": {"schema": {"type": "object"}},
                          "application/json": {"schema": {"type": "object"}}}},
                      "307": {"description": "to /trace/{code}"},
                      "400": error, "404": error, "503": error}}}


def _json_read(summary: str, param: str) -> dict[str, Any]:
    error = {"$ref": "#/components/responses/Error"}
    return {"get": {"summary": summary, "parameters": [
        {"name": param, "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "JSON"}, "400": error, "404": error,
                      "503": error}}}


def openapi_document() -> dict[str, Any]:
    """Errors are JSON for programs and an HTML page for browsers (``Accept``)."""
    error = {"type": "object", "required": ["error", "message"],
             "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "tracepay consumer pages", "version": __version__,
                 "description": "Shopper pages: pay hand-off, receipt, trace with in-browser "
                                "proof check, stall stock, camera scan."},
        "paths": {
            "/pay/{payment_id}": _page("Items and origin before paying; Pay button.",
                                       "payment_id"),
            "/receipt/{payment_id}": _page("Receipt: status, amount, items, trace code and QR.",
                                           "payment_id"),
            "/trace/{code}": _page("Trace timeline, recalls and the in-browser proof check.",
                                   "code"),
            "/trace": {"get": {"summary": "Redirect ?code= to /trace/{code}.",
                               "parameters": [{"name": "code", "in": "query", "required": True,
                                               "schema": {"type": "string"}}],
                               "responses": {"303": {"description": "to /trace/{code}"},
                                             "400": {"$ref": "#/components/responses/Error"}}}},
            "/stall/{merchant_id}": _page("A stall's static QR page: today's stock and origins.",
                                          "merchant_id"),
            "/": {"get": {"summary": "Redirect to the camera scan page (query kept).",
                          "responses": {"302": {"description": "to /scan"}}}},
            "/scan": _page("Camera scan page.", None, not_found=False),
            "/01/{gtin}/10/{lot}": _digital_link(),
            "/epcis/{lot_id}": _json_read("The lot's EPCIS 2.0 document (application/ld+json).",
                                          "lot_id"),
            "/proofs/{code}": _json_read("The trace's record and ledger inclusion proofs.",
                                         "code"),
            "/sw.js": {"get": {"summary": "Service worker: offline copies of pages seen.",
                               "responses": {"200": {"description": "JavaScript"}}}},
            "/healthz": {"get": {"summary": "Liveness.", "responses": {"200": {
                "description": "ok", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"status": {"const": "ok"}}}}}}}}},
            "/openapi.json": {"get": {"summary": "This document.",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "schemas": {"Error": error},
            "responses": {"Error": {"description": "JSON error (or an HTML page for browsers)",
                                    "content": {"application/json": {"schema": {
                                        "$ref": "#/components/schemas/Error"}}}}},
        },
    }
