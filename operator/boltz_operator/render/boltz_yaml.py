"""BoltzPrediction spec -> Boltz input YAML (as a dict), plus the files that YAML refers to.

Boltz reads MSAs and templates from paths. The Job makes them exist: ConfigMap/Secret keys are projected into
`inputs_dir`, S3 objects are downloaded by the worker into `downloads_dir` before Boltz starts. File names are
derived from the spec alone (chain id, template index), so the same spec always renders the same document.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Literal

import boltz_contract as contract

from ..api.boltz_input import (
    Constraint,
    FileRef,
    MsaSource,
    SequenceEntry,
    Template,
    TokenRef,
)
from ..api.common import KeyRef, S3File
from ..api.prediction import BoltzPredictionSpec

DEFAULT_INPUTS_DIR = f"{contract.CONFIG_DIR}/inputs"
DEFAULT_DOWNLOADS_DIR = f"{contract.WORK_DIR}/inputs"
BOLTZ_INPUT_VERSION = 1
MSA_EXTENSIONS = (".a3m", ".csv")
EMPTY_MSA = "empty"


@dataclass(frozen=True)
class InputFileRef:
    """A file the rendered YAML refers to, and where the Job gets it from.

    source configMap/secret: project key `key` of object `name` as `file_name` into the inputs volume.
    source s3: the worker downloads `uri` to `path` (see `s3_download`).
    """

    source: Literal["configMap", "secret", "s3"]
    path: str  # absolute path inside the worker container, as written in the Boltz YAML
    name: str | None = None
    key: str | None = None
    uri: str | None = None

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.path)

    def s3_download(self, endpoint_url: str | None = None, region: str | None = None) -> contract.S3Download:
        if self.source != "s3" or self.uri is None:
            raise ValueError(f"{self.path} does not come from S3")
        return contract.S3Download(uri=self.uri, dest=self.path, endpoint_url=endpoint_url, region=region)


def render_boltz_input(
    spec: BoltzPredictionSpec,
    inputs_dir: str = DEFAULT_INPUTS_DIR,
    downloads_dir: str = DEFAULT_DOWNLOADS_DIR,
) -> tuple[dict[str, Any], list[InputFileRef]]:
    """The Boltz YAML document for `spec` and the files it names (in document order)."""
    files = FileCollector(inputs_dir, downloads_dir)
    doc: dict[str, Any] = {
        "version": BOLTZ_INPUT_VERSION,
        "sequences": [_sequence(entry, files) for entry in spec.sequences],
    }
    if spec.constraints:
        doc["constraints"] = [_constraint(c) for c in spec.constraints]
    if spec.templates:
        doc["templates"] = [_template(i, t, files) for i, t in enumerate(spec.templates)]
    if spec.affinity:
        doc["properties"] = [{"affinity": {"binder": spec.affinity.binder}}]
    return doc, files.refs


def file_extension(name: str) -> str:
    """The extension of a ConfigMap/Secret key or S3 object (lower case, with the dot)."""
    return posixpath.splitext(name)[1].lower()


def msa_file_name(chain_id: str, source_name: str) -> str:
    return f"msa-{chain_id}{file_extension(source_name)}"


def template_file_name(index: int, kind: Literal["cif", "pdb"]) -> str:
    # Boltz names a template after its file's stem, so the stem must be unique per template.
    return f"template-{index}.{kind}"


class FileCollector:
    def __init__(self, inputs_dir: str, downloads_dir: str):
        self.inputs_dir = inputs_dir
        self.downloads_dir = downloads_dir
        self.refs: list[InputFileRef] = []

    def key(self, source: Literal["configMap", "secret"], ref: KeyRef, file_name: str) -> str:
        path = posixpath.join(self.inputs_dir, file_name)
        self.refs.append(InputFileRef(source=source, path=path, name=ref.name, key=ref.key))
        return path

    def s3(self, ref: S3File, file_name: str) -> str:
        path = posixpath.join(self.downloads_dir, file_name)
        self.refs.append(InputFileRef(source="s3", path=path, uri=ref.uri))
        return path


def _sequence(entry: SequenceEntry, files: FileCollector) -> dict[str, Any]:
    entity = entry.entity
    ids = list(entity.ids)
    out: dict[str, Any] = {"id": ids[0] if len(ids) == 1 else ids}
    if entry.ligand is not None:
        if entry.ligand.smiles is not None:
            out["smiles"] = entry.ligand.smiles
        else:
            out["ccd"] = entry.ligand.ccd
        return {"ligand": out}

    polymer = entry.protein or entry.dna or entry.rna
    assert polymer is not None
    out["sequence"] = polymer.sequence
    if entry.protein is not None:
        msa = _msa(entry.protein.msa, ids[0], files)
        if msa is not None:
            out["msa"] = msa
    if polymer.modifications:
        out["modifications"] = [{"position": m.position, "ccd": m.ccd} for m in polymer.modifications]
    if polymer.cyclic:
        out["cyclic"] = True
    return {entry.entity_type: out}


def _msa(msa: MsaSource | None, chain_id: str, files: FileCollector) -> str | None:
    """The Boltz `msa` value: a path, "empty", or None (leave it out: the MSA server computes it)."""
    if msa is None or msa.server:
        return None
    if msa.empty:
        return EMPTY_MSA
    if msa.config_map_key_ref is not None:
        return files.key("configMap", msa.config_map_key_ref, msa_file_name(chain_id, msa.config_map_key_ref.key))
    if msa.secret_key_ref is not None:
        return files.key("secret", msa.secret_key_ref, msa_file_name(chain_id, msa.secret_key_ref.key))
    assert msa.s3 is not None  # one_of guarantees a variant
    return files.s3(msa.s3, msa_file_name(chain_id, msa.s3.uri))


def _token(ref: TokenRef) -> list[Any]:
    return [ref.chain, ref.residue if ref.residue is not None else ref.atom]


def _constraint(c: Constraint) -> dict[str, Any]:
    if c.bond is not None:
        return {
            "bond": {
                "atom1": [c.bond.atom1.chain, c.bond.atom1.residue, c.bond.atom1.atom],
                "atom2": [c.bond.atom2.chain, c.bond.atom2.residue, c.bond.atom2.atom],
            }
        }
    if c.pocket is not None:
        return {
            "pocket": {
                "binder": c.pocket.binder,
                "contacts": [_token(t) for t in c.pocket.contacts],
                "max_distance": c.pocket.max_distance,
                "force": c.pocket.force,
            }
        }
    assert c.contact is not None
    return {
        "contact": {
            "token1": _token(c.contact.token1),
            "token2": _token(c.contact.token2),
            "max_distance": c.contact.max_distance,
            "force": c.contact.force,
        }
    }


def _template(index: int, t: Template, files: FileCollector) -> dict[str, Any]:
    kind: Literal["cif", "pdb"] = "cif" if t.cif is not None else "pdb"
    ref: FileRef = t.cif if t.cif is not None else t.pdb  # type: ignore[assignment]
    name = template_file_name(index, kind)
    if ref.config_map_key_ref is not None:
        path = files.key("configMap", ref.config_map_key_ref, name)
    else:
        assert ref.s3 is not None
        path = files.s3(ref.s3, name)
    out: dict[str, Any] = {kind: path}
    if t.chain_ids:
        out["chain_id"] = list(t.chain_ids)
    if t.template_ids:
        out["template_id"] = list(t.template_ids)
    if t.force:
        out["force"] = True
    if t.threshold is not None:
        out["threshold"] = t.threshold
    return out
