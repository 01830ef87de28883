"""Printing objects the way kubectl does: `-o yaml` (documents separated by ---), `-o json` (one object, or a List),
`-o name`, or the default `kind.group/name verb` lines."""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

from boltz_operator.api import GROUP


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the MSA and structure files in a ConfigMap) as literal blocks, readable in a diff."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False)


def print_objects(objects: list[dict[str, Any]], output: str | None, verb: str) -> None:
    if output == "yaml":
        sys.stdout.write(dump_yaml(objects))
    elif output == "json":
        doc = objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for obj in objects:
            print(qualified_name(obj) + ("" if output == "name" else f" {verb}"))


def qualified_name(obj: dict[str, Any]) -> str:
    kind = obj["kind"].lower()
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{kind}.{group}/{obj['metadata']['name']}" if group == GROUP else f"{kind}/{obj['metadata']['name']}"
