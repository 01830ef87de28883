"""Checks of a BoltzPrediction before any Job exists, with messages a user can act on.

Two layers: the worker's checks of the rendered Boltz document (boltz_contract.boltz_input, shared with the worker so
both sides agree on what Boltz accepts: chain ids, MSA mixing, constraints, templates, affinity ligand size), and
the operator's own checks of what rendering hides, phrased in terms of the spec the user wrote (ConfigMap keys
and S3 objects, which the rendered document only knows by their generated file names).
"""

from __future__ import annotations

from typing import Any

from boltz_contract import boltz_input

from ..api.boltz_input import FileRef, MsaSource
from ..api.prediction import BoltzPredictionSpec
from .boltz_yaml import (
    DEFAULT_DOWNLOADS_DIR,
    DEFAULT_INPUTS_DIR,
    MSA_EXTENSIONS,
    file_extension,
    msa_file_name,
    render_boltz_input,
)

TEMPLATE_EXTENSIONS = {"cif": (".cif", ".mmcif"), "pdb": (".pdb", ".ent")}


def validate_prediction(
    spec: BoltzPredictionSpec,
    doc: dict[str, Any] | None = None,
    inputs_dir: str = DEFAULT_INPUTS_DIR,
    downloads_dir: str = DEFAULT_DOWNLOADS_DIR,
) -> list[str]:
    """Every problem found, each a self-contained sentence; [] when the prediction can run.
    `doc` is the rendered document, if already at hand (rendered with the same directories)."""
    if doc is None:
        doc, _ = render_boltz_input(spec, inputs_dir, downloads_dir)
    errors, reported_paths = _msa_file_problems(spec, inputs_dir, downloads_dir)
    errors += _template_file_problems(spec)
    for error in boltz_input.validate_boltz_input(doc):
        # A generated path in a worker message says less than the operator's message about the user's key.
        if error not in errors and not any(path in error for path in reported_paths):
            errors.append(error)
    return errors


def _source_name(ref: MsaSource | FileRef) -> str | None:
    """The user's name for a file: a ConfigMap/Secret key or an S3 URI."""
    for key_ref in (ref.config_map_key_ref, getattr(ref, "secret_key_ref", None)):
        if key_ref is not None:
            return key_ref.key
    return ref.s3.uri if ref.s3 is not None else None


def _msa_file_problems(spec: BoltzPredictionSpec, inputs_dir: str, downloads_dir: str) -> tuple[list[str], set[str]]:
    errors, paths = [], set()
    for i, entry in enumerate(spec.sequences):
        msa = entry.protein.msa if entry.protein is not None else None
        name = _source_name(msa) if msa is not None else None
        if name is None or file_extension(name) in MSA_EXTENSIONS:
            continue
        errors.append(
            f"spec.sequences[{i}].protein.msa: {name} must end in .a3m or .csv (Boltz picks the MSA parser by "
            "the extension); rename the key or object"
        )
        file_name = msa_file_name(entry.protein.ids[0], name)  # type: ignore[union-attr]
        paths |= {f"{inputs_dir}/{file_name}", f"{downloads_dir}/{file_name}"}
    return errors, paths


def _template_file_problems(spec: BoltzPredictionSpec) -> list[str]:
    errors = []
    for i, template in enumerate(spec.templates or []):
        kind, ref = ("cif", template.cif) if template.cif is not None else ("pdb", template.pdb)
        name = _source_name(ref) if ref is not None else None
        other = "pdb" if kind == "cif" else "cif"
        if name is not None and file_extension(name) in TEMPLATE_EXTENSIONS[other]:
            errors.append(
                f"spec.templates[{i}].{kind}: {name} looks like a {other.upper()} file; "
                f"give it as templates[{i}].{other}"
            )
    return errors
