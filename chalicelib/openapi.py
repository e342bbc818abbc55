"""OpenAPI 3.1 document generated from the operation registry and the pydantic models."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.errors import STATUS_BY_CODE
from chalicelib.shared.limits import PROTOCOL_VERSION
from chalicelib.shared.models import ErrorBody

if TYPE_CHECKING:
    from chalicelib.routes.operations import Operation

_PARAM = re.compile(r"{(\w+)}")


def _closed(schema: Any) -> None:
    """additionalProperties: false on every object schema (requests and responses alike)."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)


def _path_params(op: Operation) -> list[dict[str, Any]]:
    """Path parameters as the operation's `params` model validates them (the decorator
    refuses a path parameter without one)."""
    if op.params is None:
        return []
    props = op.params.model_json_schema()["properties"]
    return [
        {"name": name, "in": "path", "required": True, "schema": props[name]}
        for name in _PARAM.findall(op.path)
    ]


def build(operations: list[Operation], audience: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorBody}
    for op in operations:
        for model in (op.body, op.query, op.response):
            if model is not None:
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    pairs: list[Any] = [(m, "validation") for m in ordered]
    refs, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    _closed(schemas)

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return refs[(model, "validation")]

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_')}".replace(
                "{", ""
            ).replace("}", ""),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {},
        }
        params = _path_params(op)
        if op.query is not None:
            qschema = schemas[op.query.__name__]
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(op.body)}},
            }
        if op.auth:
            entry["security"] = [{"bearer": []}]
        ok: dict[str, Any] = {"description": "Success"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": ref(op.response)}}
        entry["responses"][str(op.status)] = ok
        if op.status == 201:
            entry["responses"]["200"] = ok
        statuses = {STATUS_BY_CODE[c] for c in op.errors} | {400, 503}
        if op.body is not None:
            statuses.add(413)
        if op.auth:
            statuses.add(401)
        for status in sorted(statuses):
            codes = sorted(c for c in op.errors if STATUS_BY_CODE[c] == status)
            entry["responses"][str(status)] = {
                "description": ", ".join(codes) or "error",
                "content": {"application/json": {"schema": ref(ErrorBody)}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "NT² Cloud Sync", "version": PROTOCOL_VERSION},
        "servers": [{"url": audience}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
