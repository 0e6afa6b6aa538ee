"""The typed models follow creditd's OpenAPI document: the same fields, credits as Decimal."""

from __future__ import annotations

import dataclasses
import json
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from creditd._models import MODELS
from tests.conftest import App

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.json"


def _wire_names(cls: type[Any]) -> set[str]:
    return {f.metadata.get("json", f.name) for f in dataclasses.fields(cls)}


def test_every_model_has_exactly_its_schemas_fields(app: App) -> None:
    doc = httpx.get(f"{app.url}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name, cls in MODELS.items():
        properties = set(schemas[name]["properties"])
        assert _wire_names(cls) == properties, f"{name}: the model and /openapi.json disagree"
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if hints[field.name] in (Decimal, Decimal | None):
                wire = field.metadata.get("json", field.name)
                assert "string" in json.dumps(schemas[name]["properties"][wire].get("type")), f"{name}.{wire}"


def test_the_committed_document_is_the_served_one(app: App) -> None:
    served = httpx.get(f"{app.url}/openapi.json").json()
    assert json.loads(COMMITTED.read_text()) == served, (
        "clients/openapi.json is stale: run `npm run generate` in clients/typescript and commit the result"
    )
