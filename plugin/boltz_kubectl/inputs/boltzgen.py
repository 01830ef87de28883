"""A boltzgen design specification (its own YAML, target files beside it) -> a BoltzGenCampaign designSpec.

The CRD spells boltzgen's keys in camelCase and differs in three places (api/design_spec.py): an entity's `id`
is the list `ids`, a file entity's `path` becomes a ConfigMap key or an S3 object (filled in by placement), and a
bond's atoms are objects. Everything else is renamed key by key; the operator's DesignSpec model then decides
what is expressible, and its complaints are reported under boltzgen's own key names (see errors.py).

boltzgen resolves a file's `path` against the spec's folder; so does this (and then against the current
directory), with the same rules as boltz inputs: inside the spec's folder, no `../` escapes (inputs/files.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic.alias_generators import to_camel

from ..errors import PluginError
from .boltz import Converted
from .files import FileResolver

# Messages count entities and constraints from 0, as the model's own errors do (boltzgen has no numbering).

TOP_LEVEL_KEYS = ("entities", "constraints")
ENTITY_TYPES = ("protein", "dna", "rna", "ligand", "file")


def convert_design_spec(path: Path, cwd: Path | None = None) -> Converted:
    """`path` as a BoltzGenCampaign `designSpec` body (camelCase, file slots empty). Raises PluginError listing
    every problem found here; the model's own checks run when the campaign is built (manifests.build_campaign)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise PluginError(f"{path}: cannot read it as YAML: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("entities"), list) or not doc["entities"]:
        raise PluginError(f"{path}: a boltzgen design spec is a mapping with a non-empty 'entities' list")
    problems = [
        f"unknown top-level key {k!r} (boltzgen reads {', '.join(TOP_LEVEL_KEYS)})"
        for k in doc
        if k not in TOP_LEVEL_KEYS
    ]
    files = FileResolver(path.parent, cwd)
    entities = [_entity(i, item, files, problems) for i, item in enumerate(doc["entities"])]
    body: dict[str, Any] = {"entities": entities}
    if doc.get("constraints") is not None:
        body["constraints"] = [_constraint(i, c, problems) for i, c in enumerate(doc["constraints"])]
    problems += files.problems
    if problems:
        raise PluginError(f"{path}: cannot be submitted as a BoltzGenCampaign", problems)
    return Converted(source=path, spec=body, files=list(files.files.values()))


def camelize(value: Any) -> Any:
    """boltzgen's snake_case keys -> the CRD's camelCase, at every depth (no boltzgen value is a free-form map)."""
    if isinstance(value, dict):
        return {to_camel(str(k)) if "_" in str(k) else k: camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


def _entity(index: int, item: Any, files: FileResolver, problems: list[str]) -> dict[str, Any]:
    where = f"entities[{index}]"
    if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in ENTITY_TYPES:
        problems.append(f"{where}: must have exactly one key, one of {', '.join(ENTITY_TYPES)}")
        return {}
    kind, body = next(iter(item.items()))
    if not isinstance(body, dict):
        problems.append(f"{where}.{kind}: must be a mapping")
        return {}
    if kind != "file":
        out = camelize({k: v for k, v in body.items() if k != "id"})
        if kind == "protein" and isinstance(out.get("sequence"), int):
            out["sequence"] = str(out["sequence"])  # `sequence: 17` (17 designed residues), as boltzgen reads it
        if "id" not in body:
            problems.append(f"{where}.{kind}.id: missing (a chain id or a list of them)")
        else:
            out = {"ids": [body["id"]] if isinstance(body["id"], (str, int)) else body["id"], **out}
        return {kind: out}
    out = camelize({k: v for k, v in body.items() if k != "path"})
    if out.get("include") == "all":
        del out["include"]  # boltzgen's `include: all` is the CRD's default (every chain when include is omitted)
    if "path" not in body:
        problems.append(f"{where}.file.path: missing (the .cif or .pdb file of the target)")
    else:
        files.attach(body["path"], f"{where}.file.path", out)
    return {"file": out}


def _constraint(index: int, item: Any, problems: list[str]) -> dict[str, Any]:
    where = f"constraints[{index}]"
    if not isinstance(item, dict) or len(item) != 1:
        problems.append(f"{where}: must have exactly one key, bond or total_len")
        return {}
    kind, body = next(iter(item.items()))
    if kind == "bond" and isinstance(body, dict):
        out = {}
        for key in ("atom1", "atom2"):
            atom = body.get(key)
            if not (isinstance(atom, list) and len(atom) == 3):
                problems.append(f"{where}.bond.{key}: must be [chain, residue index, atom name], got {atom!r}")
                continue
            out[key] = dict(zip(("chain", "residue", "atom"), atom))
        unknown = [k for k in body if k not in ("atom1", "atom2")]
        problems += [f"{where}.bond: unknown key {k!r}" for k in unknown]
        return {"bond": out}
    return camelize({kind: body})
