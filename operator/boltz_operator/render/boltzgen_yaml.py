"""BoltzGenCampaign designSpec -> BoltzGen's design-specification YAML (as a dict), plus the files it names.

The CRD spells BoltzGen's keys in camelCase and differs in three places (see api/campaign.py): chain ids are
always a list (`ids`), a structure file is a reference (ConfigMap key or S3 object) instead of a path, and a bond's
atoms are objects. Everything else is BoltzGen's key, in snake_case, so the translation is mechanical.

Structure files get names derived from the entity's position (`target-<i>.cif`), never from user input: a key or
URI cannot steer where the worker writes. ConfigMap keys are projected into `inputs_dir`; S3 objects are
downloaded by the worker into `downloads_dir` before boltzgen starts.
"""

from __future__ import annotations

from typing import Any

from ..api.design_spec import DesignConstraint, DesignEntity, DesignFile, DesignSpec
from .boltz_yaml import DEFAULT_DOWNLOADS_DIR, DEFAULT_INPUTS_DIR, FileCollector, InputFileRef


def structure_file_name(entity_index: int, file: DesignFile) -> str:
    return f"target-{entity_index}{file.suffix}"


def render_design_spec(
    spec: DesignSpec, inputs_dir: str = DEFAULT_INPUTS_DIR, downloads_dir: str = DEFAULT_DOWNLOADS_DIR
) -> tuple[dict[str, Any], list[InputFileRef]]:
    """BoltzGen's YAML document for `spec` and the structure files it names (in entity order)."""
    files = FileCollector(inputs_dir, downloads_dir)
    doc: dict[str, Any] = {"entities": [_entity(i, e, files) for i, e in enumerate(spec.entities)]}
    if spec.constraints:
        doc["constraints"] = [_constraint(c) for c in spec.constraints]
    return doc, files.refs


def _snake(model) -> dict[str, Any]:
    """A model's fields under their Python (= BoltzGen's snake_case) names, unset fields left out."""
    return model.model_dump(mode="json", by_alias=False, exclude_none=True)


def _entity(index: int, entity: DesignEntity, files: FileCollector) -> dict[str, Any]:
    kind = entity.entity_type
    if kind == "file":
        assert entity.file is not None  # entity_type names the one field that is set
        return {"file": _file(index, entity.file, files)}
    body = _snake(entity.entity)
    ids = body.pop("ids")
    # BoltzGen takes `id` as a string or a list: the string for one chain reads like its own examples.
    return {kind: {"id": ids[0] if len(ids) == 1 else ids, **body}}


def _file(index: int, file: DesignFile, files: FileCollector) -> dict[str, Any]:
    name = structure_file_name(index, file)
    if file.config_map_key_ref is not None:
        path = files.key("configMap", file.config_map_key_ref, name)
    else:
        path = files.s3(file.s3, name)  # type: ignore[arg-type]
    body = _snake(file)
    body.pop("config_map_key_ref", None)
    body.pop("s3", None)
    return {"path": path, **body}


def _constraint(constraint: DesignConstraint) -> dict[str, Any]:
    if constraint.bond is not None:
        atoms = (constraint.bond.atom1, constraint.bond.atom2)
        return {"bond": {f"atom{i}": [a.chain, a.residue, a.atom] for i, a in enumerate(atoms, start=1)}}
    return {"total_len": _snake(constraint.total_len)}
