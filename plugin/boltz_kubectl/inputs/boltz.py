"""A boltz input (YAML or FASTA, as `boltz predict` takes it) -> a BoltzPrediction spec and the files it names.

The document is first checked by the same validator the operator and the worker use
(boltz_contract.boltz_input: boltz 2.2.1's schema, unknown keys included), then translated key by key. What the
CRD cannot express is an error naming the boltz field, never a silent drop. File paths become `slots` that
placement (boltz_kubectl.manifests) fills with a ConfigMap key or an S3 object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from boltz_contract.boltz_input import validate_boltz_input

from ..errors import PluginError
from .fasta import fasta_to_boltz_doc
from .files import FileResolver, LocalFile

YAML_SUFFIXES = (".yaml", ".yml")
FASTA_SUFFIXES = (".fasta", ".fa", ".fas")
INPUT_SUFFIXES = YAML_SUFFIXES + FASTA_SUFFIXES


@dataclass
class Converted:
    """A user's input translated: the spec body (camelCase, file slots still empty) and the local files."""

    source: Path
    spec: dict[str, Any]
    files: list[LocalFile] = field(default_factory=list)


def read_boltz_input(path: Path) -> dict[str, Any]:
    """The boltz YAML document of `path` (a FASTA file is turned into one). Raises PluginError."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise PluginError(f"{path}: cannot read it: {e}") from e
    if path.suffix.lower() in FASTA_SUFFIXES:
        doc, problems = fasta_to_boltz_doc(text)
        if problems:
            raise PluginError(f"{path}: not a boltz FASTA input", problems)
        return doc
    if path.suffix.lower() not in YAML_SUFFIXES:
        raise PluginError(f"{path}: a boltz input ends in {', '.join(INPUT_SUFFIXES)}")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PluginError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise PluginError(f"{path}: a boltz input is a mapping with a 'sequences' list")
    return doc


def convert_boltz_input(path: Path, cwd: Path | None = None) -> Converted:
    """`path` as a BoltzPrediction spec body. Raises PluginError listing every problem: boltz schema errors,
    fields the CRD cannot express, missing files, files outside the input's folder or over the size limit."""
    return convert_boltz_doc(read_boltz_input(path), path, cwd)


def convert_boltz_doc(
    doc: dict[str, Any], path: Path, cwd: Path | None = None, kind: str = "BoltzPrediction"
) -> Converted:
    """A boltz document read from `path` (its files resolve against `path`'s folder) as a BoltzPrediction spec body;
    `kind` names what it is submitted as, in messages. Raises PluginError as convert_boltz_input."""
    problems = validate_boltz_input(doc)
    if problems:
        raise PluginError(f"{path}: boltz would refuse this input", problems)
    files = FileResolver(path.parent, cwd)
    spec = _Translator(files).spec(doc)
    if spec.problems or files.problems:
        raise PluginError(f"{path}: cannot be submitted as a {kind}", spec.problems + files.problems)
    return Converted(source=path, spec=spec.body, files=list(files.files.values()))


def _ids(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass
class _Spec:
    body: dict[str, Any]
    problems: list[str]


class _Translator:
    def __init__(self, files: FileResolver):
        self.files = files
        self.problems: list[str] = []

    def spec(self, doc: dict[str, Any]) -> _Spec:
        body: dict[str, Any] = {"sequences": self._sequences(doc["sequences"])}
        if doc.get("constraints"):
            body["constraints"] = [self._constraint(c) for c in doc["constraints"]]
        if doc.get("templates"):
            body["templates"] = [self._template(i, t) for i, t in enumerate(doc["templates"])]
        for prop in doc.get("properties") or []:
            body["affinity"] = {"binder": prop["affinity"]["binder"]}
        return _Spec(body, self.problems)

    # ------------------------------------------------------------------------------------------ sequences

    def _sequences(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        # boltz makes one entity of all proteins with the same sequence, taking modifications and cyclic from the
        # first, and requires them to share one msa; the operator names an MSA file after its entry's first chain,
        # so such proteins become one entry with all their ids (the chains and their order are unchanged).
        by_sequence: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(items):
            kind, body = next(iter(item.items()))
            kind = str(kind).lower()
            where = f"sequences[{index}].{kind}"
            if kind == "protein" and body["sequence"] in by_sequence:
                by_sequence[body["sequence"]]["protein"]["ids"] += _ids(body["id"])
                continue
            entry = self._ligand(where, body) if kind == "ligand" else self._polymer(where, kind, body)
            out.append(entry)
            if kind == "protein":
                by_sequence[body["sequence"]] = entry
        return out

    def _polymer(self, where: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": _ids(body["id"]), "sequence": body["sequence"]}
        if kind == "protein":
            msa = body.get("msa")
            if msa == "empty":
                out["msa"] = {"empty": True}
            elif msa not in (None, ""):  # absent, null and "" all mean: the MSA server computes it
                slot: dict[str, Any] = {}
                self.files.attach(msa, f"{where}.msa", slot)
                out["msa"] = slot
        if body.get("modifications"):
            out["modifications"] = [{"position": m["position"], "ccd": m["ccd"]} for m in body["modifications"]]
        if body.get("cyclic"):
            out["cyclic"] = True
        return {kind: out}

    def _ligand(self, where: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": _ids(body["id"])}
        if "smiles" in body:
            out["smiles"] = body["smiles"]
            return {"ligand": out}
        ccd = body["ccd"]
        if isinstance(ccd, list) and len(ccd) > 1:
            self.problems.append(
                f"{where}.ccd: a list of CCD codes (a multi-residue ligand) cannot be expressed: "
                "BoltzPrediction's spec.sequences[].ligand.ccd takes one code"
            )
        out["ccd"] = ccd[0] if isinstance(ccd, list) else ccd
        return {"ligand": out}

    # ------------------------------------------------------------------------------------------ constraints

    def _constraint(self, constraint: dict[str, Any]) -> dict[str, Any]:
        kind, body = next(iter(constraint.items()))
        if kind == "bond":
            return {"bond": {key: dict(zip(("chain", "residue", "atom"), body[key])) for key in ("atom1", "atom2")}}
        out: dict[str, Any] = {}
        if kind == "pocket":
            out["binder"] = body["binder"]
            out["contacts"] = [_token(t) for t in body["contacts"]]
        else:
            out["token1"], out["token2"] = _token(body["token1"]), _token(body["token2"])
        if body.get("max_distance") is not None:
            out["maxDistance"] = body["max_distance"]
        if body.get("force") is not None:
            out["force"] = body["force"]
        return {kind: out}

    # ------------------------------------------------------------------------------------------ templates

    def _template(self, index: int, template: dict[str, Any]) -> dict[str, Any]:
        kind = "cif" if "cif" in template else "pdb"
        slot: dict[str, Any] = {}
        self.files.attach(template[kind], f"templates[{index}].{kind}", slot)
        out: dict[str, Any] = {kind: slot}
        if template.get("chain_id") is not None:
            out["chainIds"] = _ids(template["chain_id"])
        if template.get("template_id") is not None:
            out["templateIds"] = _ids(template["template_id"])
        if template.get("force"):
            out["force"] = True
        if template.get("threshold") is not None:
            out["threshold"] = template["threshold"]
        return out


def _token(token: list[Any]) -> dict[str, Any]:
    """[chain, residue index] (polymers) or [chain, atom name] (ligands): the validator checked which it is."""
    chain, position = token
    return {"chain": chain, "atom" if isinstance(position, str) else "residue": position}
