"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

Structural means: every node has a type (or is int-or-string / preserve-unknown-fields), no $ref, no
`additionalProperties: false`, and anyOf/oneOf only in the int-or-string shape. Optional fields become
non-required properties (no `nullable`), since the apiserver drops nulls the user writes anyway.
"""

from __future__ import annotations

import copy
import re
from typing import Any

# JSON-schema keywords that carry over as they are.
_PASSTHROUGH = (
    "type",
    "format",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
)


class SchemaError(ValueError):
    """The model cannot be expressed as a structural schema."""


def structural_schema(json_schema: dict[str, Any]) -> dict[str, Any]:
    """Convert a pydantic `model_json_schema(by_alias=True)` result."""
    defs = json_schema.get("$defs", {})
    return _convert(json_schema, defs, path="")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline $ref and unwrap Optional (anyOf [X, null]); keys next to them (description, default, rules) win."""
    node = dict(node)
    while True:
        if "$ref" in node:
            target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
            node = _merge(target, node)
        elif "anyOf" in node and any(o.get("type") == "null" for o in node["anyOf"]):
            others = [o for o in node.pop("anyOf") if o.get("type") != "null"]
            if len(others) != 1:
                raise SchemaError(f"union types are not structural: {others}")
            node = _merge(dict(others[0]), node)
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = _merge(dict(node.pop("allOf")[0]), node)
        else:
            return node


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **override}
    rules = base.get("x-kubernetes-validations", []) + override.get("x-kubernetes-validations", [])
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def _description(text: str) -> str:
    # Docstrings wrap lines; kubectl explain re-wraps, so keep paragraphs and join the lines within them.
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _convert(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    if "description" in node:
        out["description"] = _description(node["description"])

    if node.get("x-kubernetes-int-or-string"):
        out["x-kubernetes-int-or-string"] = True
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "anyOf" in node or "oneOf" in node:
        raise SchemaError(f"{path or '<root>'}: union types are not structural")
    elif "const" in node:
        node["enum"] = [node["const"]]
        node.setdefault("type", _json_type(node["const"]))
    elif "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        raise SchemaError(f"{path or '<root>'}: no type")

    for key in _PASSTHROUGH:
        if key in node:
            out[key] = node[key]
    # JSON Schema 2020-12 (pydantic) gives the bound; Kubernetes' OpenAPI v3 wants minimum + a boolean.
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            out[limit] = node[bound]
            out[bound] = True

    if node.get("type") == "object":
        _convert_object(node, out, defs, path)
    elif node.get("type") == "array":
        out["items"] = _convert(node["items"], defs, f"{path}[]")
        if node.get("uniqueItems"):
            out["x-kubernetes-list-type"] = "set"

    if "default" in node and node["default"] not in (None, [], ""):  # empty defaults only add noise
        out["default"] = _default(node["default"], out, path)

    for key, value in node.items():
        if key == "x-kubernetes-validations":
            out[key] = [_rule(r) for r in value]
        elif key.startswith("x-kubernetes-") and key != "x-kubernetes-int-or-string":
            out[key] = value
    return out


def _rule(rule: dict[str, str]) -> dict[str, str]:
    # pydantic sorts keys; put the rule first, as people write them.
    order = ("rule", "message", "messageExpression", "fieldPath", "reason", "optionalOldSelf")
    return {k: rule[k] for k in order if k in rule}


def _convert_object(node: dict[str, Any], out: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    properties = node.get("properties")
    if properties is not None:
        out["properties"] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in properties.items()}
        if node.get("required"):
            out["required"] = list(node["required"])
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        if properties:
            raise SchemaError(f"{path}: properties and additionalProperties are exclusive in a structural schema")
        out["additionalProperties"] = _convert(additional, defs, f"{path}{{}}")


def _default(value: Any, out: dict[str, Any], path: str) -> Any:
    """An object default becomes {}: the apiserver then fills in the defaults of its fields, one level at a
    time, so the schema states each default once, at the field that has it."""
    if isinstance(value, dict) and out.get("type") == "object":
        if out.get("required"):
            raise SchemaError(f"{path}: an object with required fields cannot default to {{}}")
        return {}
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def walk(schema: dict[str, Any], path: str = ""):
    """Yield (path, node) for every schema node, for checks and tests."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")
