"""BoltzGenCampaign: one BoltzGen design spec -> N design shards (an Indexed Job) -> one filter Job.

`spec.designSpec` follows BoltzGen's design-specification YAML (boltzgen 0.3.2, `boltzgen/data/parse/schema.py`;
https://github.com/HannesStark/boltzgen#how-to-make-a-design-specification-yaml) with Kubernetes spellings:

- keys are camelCase (`res_index` -> `resIndex`, `binding_types` -> `bindingTypes`, `total_len` -> `totalLen`);
  the worker writes them back in snake_case;
- chain ids of protein/dna/rna/ligand entities are always a list (`ids`), as in BoltzPrediction (BoltzGen's `id`
  takes a string or a list);
- a `file` entity names its structure by reference (`configMapKeyRef` or `s3`), never by host path; the worker
  downloads it next to the rendered YAML and writes `path:` itself;
- the atoms of a bond are objects `{chain, residue, atom}` instead of BoltzGen's `[chain, residue, atom]` lists
  (a list of mixed types is not a structural schema);
- the selection wrappers stay as BoltzGen has them (`include: [{chain: {id: A}}]`,
  `structureGroups: [{group: {...}}]`, `designInsertions: [{insertion: {...}}]`), so a BoltzGen example converts
  key by key.

Left out (not expressible, or rarely used; a later version can add them): per-residue `binding_types` /
`secondary_structure` strings (use the range form), `structure_groups: all` (omit the field: that is the default),
`include: all` (omit the field), `leaving_atoms`, `fuse`, `msa` settings (BoltzGen's defaults apply), and
`modifications`.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict, StringConstraints, WithJsonSchema, field_validator, model_validator

from .common import (
    AGE_COLUMN,
    API_VERSION,
    CONDITIONS_SCHEMA_EXTRA,
    CelRule,
    ComputeResources,
    Condition,
    KeyRef,
    KubeModel,
    NodeSelector,
    ObjectName,
    PodMetadata,
    PrinterColumn,
    Quantity,
    ResourceKind,
    StatusModel,
    Toleration,
    cel_validations,
    immutable_rule,
)
from .prediction import (
    IDS_DESCRIPTION,
    MAX_SEQUENCE_LENGTH,
    AtomRef,
    ChainIds,
    Ligand,
    ResultsStore,
    S3File,
    _cel_ids,
)

# ---------------------------------------------------------------------------------------------- limits

# Same reasoning as BoltzPrediction: bounds keep the CEL rules within the apiserver's cost limits.
MAX_ENTITIES = 32
MAX_SELECTIONS = 32  # chains in one include/exclude/design/... list of a file entity
MAX_CONSTRAINTS = 32
MAX_RESIDUE_CONSTRAINTS = 64
MAX_RANGE_LENGTH = 1024
# Target structures: a ConfigMap holds at most ~1 MiB in all; S3 objects are refused by the worker above this.
MAX_STRUCTURE_FILE_BYTES = 64 * 1024 * 1024
MAX_DESIGNS = 1_000_000
MAX_SHARDS = 1000
# shards: auto -> ceil(numDesigns / AUTO_DESIGNS_PER_SHARD), at most AUTO_MAX_SHARDS.
AUTO_DESIGNS_PER_SHARD = 100
AUTO_MAX_SHARDS = 200
DEFAULT_BUDGET = 30  # boltzgen's own default for --budget
MAX_TOP_DESIGNS = 10

STRUCTURE_SUFFIXES = (".cif", ".pdb")

# ---------------------------------------------------------------------------------------------- shared types

# BoltzGen's residue ranges (parse_range): 1-based, comma-separated items N, N..M, ..M, N.. . `all` only where
# BoltzGen takes it (a file's bindingTypes and secondaryStructure): its parse_range refuses it everywhere else
# (checked with boltzgen 0.3.2 itself: tests/integration/fidelity/test_boltzgen_spec_fidelity.py).
# YAML lets people write `resIndex: 13`: int-or-string in the CRD, always a string in Python.
_RANGE_ITEM = r"([0-9]+(\.\.[0-9]*)?|\.\.[0-9]+)"
RESIDUE_RANGE = rf"^{_RANGE_ITEM}(,{_RANGE_ITEM})*$"
RESIDUE_RANGE_OR_ALL = rf"^(all|{_RANGE_ITEM}(,{_RANGE_ITEM})*)$"
INSERTION_LENGTH = r"^[0-9]+(\.\.[0-9]+)?$"  # N or N..M: an open end has no length to sample


def _int_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_range_items(value: str) -> str:
    """What a pattern cannot say: indices start at 1, and N..M does not run backwards (boltzgen fails on both)."""
    for item in value.split(","):
        low, _, high = item.partition("..")
        if item == "all":
            continue
        if any(part and int(part) == 0 for part in (low, high)):
            raise ValueError(f"{item!r}: residue indices start at 1")
        if low and high and int(low) > int(high):
            raise ValueError(f"{item!r} runs backwards: write the smaller index first")
    return value


def _range_type(pattern: str) -> Any:
    return Annotated[
        str,
        BeforeValidator(_int_to_str),
        StringConstraints(pattern=pattern, max_length=MAX_RANGE_LENGTH),
        AfterValidator(_check_range_items),
        WithJsonSchema(
            {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": pattern,
                "maxLength": MAX_RANGE_LENGTH,
                "x-kubernetes-int-or-string": True,
            }
        ),
    ]


ResidueRange = _range_type(RESIDUE_RANGE)
ResidueRangeOrAll = _range_type(RESIDUE_RANGE_OR_ALL)
InsertionLength = _range_type(INSERTION_LENGTH)
RANGE_HINT = "1-based residue indices (label_seq_id): comma-separated N, N..M, ..M or N.. (e.g. 2..50,55..)."

# A designed protein: amino acids, and numbers (or N..M ranges) of residues to design, e.g. 15..20AAAAVT18PPP.
DESIGN_SEQUENCE = r"^([A-Z]|[0-9]+(\.\.[0-9]+)?)+$"
AMINO_ACIDS = r"^[ACDEFGHIKLMNPQRSTVWY]+$"
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$", min_length=1, max_length=128)]


def _structure_file_problem(name: str) -> str | None:
    """Why a file reference (ConfigMap key or S3 URI) is refused, or None."""
    if not name.lower().endswith(STRUCTURE_SUFFIXES):
        return "a target structure must be a .cif or .pdb file"
    if ".." in name:
        return "a target structure reference must not contain '..'"
    return None


# ---------------------------------------------------------------------------------------------- entities


class DesignBindingTypes(KubeModel):
    """Residues of this chain the designs should (binding) or should not (notBinding) contact."""

    binding: ResidueRange | None = Field(default=None, description="Residues to bind. " + RANGE_HINT)
    not_binding: ResidueRange | None = Field(
        default=None, description="Residues not to bind. " + RANGE_HINT
    )


class DesignSecondaryStructure(KubeModel):
    """Secondary structure to condition designed residues on."""

    loop: ResidueRange | None = Field(default=None, description="Residues to make loops. " + RANGE_HINT)
    helix: ResidueRange | None = Field(default=None, description="Residues to make helices. " + RANGE_HINT)
    sheet: ResidueRange | None = Field(default=None, description="Residues to make strands. " + RANGE_HINT)


class ResidueConstraint(KubeModel):
    """Amino acids allowed (or disallowed) at designed positions. Exactly one of allowed, disallowed."""

    one_of = ("allowed", "disallowed")

    position: ResidueRange = Field(description="Positions within this chain. " + RANGE_HINT)
    allowed: str | None = Field(
        default=None, max_length=20, pattern=AMINO_ACIDS, description="One-letter codes allowed there (e.g. AGS)."
    )
    disallowed: str | None = Field(
        default=None, max_length=20, pattern=AMINO_ACIDS, description="One-letter codes not allowed there (e.g. CM)."
    )


FIXED_ONLY = "bindingTypes name residues to contact or avoid, which must not be designed: this chain has no fixed residue"
DESIGNED_ONLY = "secondaryStructure conditions designed residues: this chain has none (add numbers to its sequence)"


class DesignProtein(KubeModel):
    """A protein chain: fixed (letters only) or designed (numbers give residues to design). BoltzGen takes
    bindingTypes only on fixed residues and secondaryStructure only on designed ones."""

    cel_rules = (
        CelRule(rule="!has(self.bindingTypes) || self.sequence.matches('[A-Z]')", message=FIXED_ONLY,
                field_path=".bindingTypes"),
        CelRule(rule="!has(self.secondaryStructure) || self.sequence.matches('[0-9]')", message=DESIGNED_ONLY,
                field_path=".secondaryStructure"),
    )

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=DESIGN_SEQUENCE,
        description="One-letter amino acids and numbers of designed residues: 80..140 designs 80 to 140 residues "
        "(length sampled per design), 17 designs exactly 17, 3..5C6C3 mixes designed and fixed residues.",
    )
    cyclic: bool | None = Field(default=None, description="true for a cyclic peptide.")
    binding_types: DesignBindingTypes | None = Field(
        default=None, description="Residues of this chain to bind or not to bind."
    )
    secondary_structure: DesignSecondaryStructure | None = Field(
        default=None, description="Secondary structure of designed residues."
    )
    symmetric_group: int | None = Field(
        default=None, ge=1, le=64, description="Chains in the same group get the same sampled sequence (symmetry)."
    )
    residue_constraints: list[ResidueConstraint] | None = Field(
        default=None, max_length=MAX_RESIDUE_CONSTRAINTS, description="Amino acids allowed at designed positions."
    )

    @model_validator(mode="after")
    def _check_fixed_and_designed(self):
        if self.binding_types is not None and not re.search("[A-Z]", self.sequence):
            raise ValueError(FIXED_ONLY)
        if self.secondary_structure is not None and not re.search("[0-9]", self.sequence):
            raise ValueError(DESIGNED_ONLY)
        return self

    @field_validator("sequence")
    @classmethod
    def _check_designed_counts(cls, sequence: str) -> str:
        for match in re.finditer(r"([0-9]+)(?:\.\.([0-9]+))?", sequence):
            low, high = int(match.group(1)), int(match.group(2) or match.group(1))
            if low == 0:
                raise ValueError(f"{match.group(0)!r}: a designed stretch needs at least 1 residue")
            if high < low:
                raise ValueError(f"{match.group(0)!r} runs backwards: write the smaller length first")
        return sequence


class DesignNucleicAcid(KubeModel):
    """A fixed DNA or RNA chain (or identical copies of it). Never cyclic: BoltzGen closes a cyclic chain with atoms
    N and C, which nucleotides lack."""

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[ACGTUN]+$",
        description="Nucleotides in upper-case one-letter codes (A, C, G, T or U, N), no spaces.",
    )


# -- selections within a structure file (BoltzGen keeps each item under a `chain:`/`group:`/`insertion:` key)

FileChainId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,4}$", max_length=4)]
FILE_CHAIN_ID = "Chain id in the file (label_asym_id)."


class FileChain(KubeModel):
    """A chain of the structure file, optionally restricted to some residues."""

    id: FileChainId = Field(description=FILE_CHAIN_ID)
    res_index: ResidueRange | None = Field(default=None, description="Residues; all if omitted. " + RANGE_HINT)


class IncludeChain(FileChain):
    """A chain to take from the file."""

    symmetric_group: int | None = Field(
        default=None, ge=1, le=64, description="Chains in the same group are redesigned with tied sequences."
    )


class ProximityChain(FileChain):
    """Residues of the file within a radius of a chain (or of some of its residues)."""

    radius: float = Field(gt=0, le=100, description="Radius in Ångström.")


class BindingChain(KubeModel):
    """Residues of a file chain the designs should (binding) or should not (notBinding) contact."""

    id: FileChainId = Field(description=FILE_CHAIN_ID)
    binding: ResidueRangeOrAll | None = Field(default=None, description="Residues to bind. " + RANGE_HINT)
    not_binding: ResidueRangeOrAll | None = Field(
        default=None, description="Residues not to bind (`all` for the whole chain). " + RANGE_HINT
    )


class SecondaryStructureChain(KubeModel):
    """Secondary structure of designed residues of a file chain."""

    id: FileChainId = Field(description=FILE_CHAIN_ID)
    loop: ResidueRangeOrAll | None = Field(default=None, description="Residues to make loops. " + RANGE_HINT)
    helix: ResidueRangeOrAll | None = Field(default=None, description="Residues to make helices. " + RANGE_HINT)
    sheet: ResidueRangeOrAll | None = Field(default=None, description="Residues to make strands. " + RANGE_HINT)


class StructureGroup(FileChain):
    """How much of the file's structure the model sees."""

    id: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]{1,4}|all)$", max_length=4)] = Field(
        description="Chain id in the file (label_asym_id), or all."
    )
    visibility: int = Field(
        ge=0,
        le=64,
        description="0: structure not given; 1 (the default for everything): given; 2, 3...: given within the "
        "group but not relative to other groups.",
    )


class DesignInsertion(KubeModel):
    """Designed residues inserted into a file chain."""

    id: FileChainId = Field(description=FILE_CHAIN_ID)
    res_index: int = Field(ge=1, description="Insert after this residue (1-based).")
    num_residues: InsertionLength = Field(description="How many residues to insert: N or N..M (sampled per design).")


class ChainItem(KubeModel):
    """One entry, under `chain:` as in BoltzGen's YAML."""

    chain: FileChain = Field(description="A chain of the file.")


class IncludeItem(KubeModel):
    """One entry, under `chain:` as in BoltzGen's YAML."""

    chain: IncludeChain = Field(description="A chain of the file.")


class ProximityItem(KubeModel):
    """One entry, under `chain:` as in BoltzGen's YAML."""

    chain: ProximityChain = Field(description="A chain of the file and a radius.")


class BindingItem(KubeModel):
    """One entry, under `chain:` as in BoltzGen's YAML."""

    chain: BindingChain = Field(description="A chain of the file.")


class SecondaryStructureItem(KubeModel):
    """One entry, under `chain:` as in BoltzGen's YAML."""

    chain: SecondaryStructureChain = Field(description="A chain of the file.")


class StructureGroupItem(KubeModel):
    """One entry, under `group:` as in BoltzGen's YAML."""

    group: StructureGroup = Field(description="A structure group.")


class InsertionItem(KubeModel):
    """One entry, under `insertion:` as in BoltzGen's YAML."""

    insertion: DesignInsertion = Field(description="An insertion.")


def _selection(description: str) -> Any:
    return Field(default=None, max_length=MAX_SELECTIONS, description=description)


class DesignFile(KubeModel):
    """A target (or scaffold) taken from a structure file. The file comes from exactly one of configMapKeyRef,
    s3; its name must end in .cif or .pdb and must not contain '..'. A ConfigMap holds at most about 1 MiB;
    S3 objects may be up to 64 MiB. The worker stores it next to the rendered spec under a name of its own."""

    one_of = ("config_map_key_ref", "s3")
    cel_rules = tuple(
        rule
        for field, value in (("configMapKeyRef", "self.configMapKeyRef.key"), ("s3", "self.s3.uri"))
        for rule in (
            CelRule(
                rule=f"!has(self.{field}) || {value}.lowerAscii().endsWith('.cif') "
                f"|| {value}.lowerAscii().endsWith('.pdb')",
                message="a target structure must be a .cif or .pdb file",
                field_path=f".{field}",
            ),
            CelRule(
                rule=f"!has(self.{field}) || !{value}.contains('..')",
                message="a target structure reference must not contain '..'",
                field_path=f".{field}",
            ),
        )
    )

    config_map_key_ref: KeyRef | None = Field(
        default=None, description="A ConfigMap key holding the .cif or .pdb file (at most about 1 MiB)."
    )
    s3: S3File | None = Field(
        default=None,
        description="A .cif or .pdb object in S3 (at most 64 MiB), fetched with the results store's endpoint and "
        "credentials when a shard starts.",
    )
    include: list[IncludeItem] | None = _selection("Chains (and residues) of the file to use; every chain if omitted.")
    exclude: list[ChainItem] | None = _selection("Chains (and residues) of the file to leave out.")
    include_proximity: list[ProximityItem] | None = _selection(
        "Keep, of the included residues, those within a radius of these chains or residues (BoltzGen intersects "
        "this with include; it adds nothing)."
    )
    binding_types: list[BindingItem] | None = _selection(
        "Residues the designs should or should not bind; anywhere if omitted."
    )
    structure_groups: list[StructureGroupItem] | None = _selection(
        "Which parts of the structure the model sees (later entries override earlier ones); all visible if omitted."
    )
    design: list[ChainItem] | None = _selection("Residues of the file to redesign.")
    not_design: list[ChainItem] | None = _selection("Residues of the file to keep (not redesign).")
    secondary_structure: list[SecondaryStructureItem] | None = _selection("Secondary structure of redesigned residues.")
    design_insertions: list[InsertionItem] | None = _selection("Designed residues to insert into file chains.")
    reset_res_index: list[ChainItem] | None = _selection(
        "Chains whose residue numbering restarts at 1 after include/exclude."
    )
    use_assembly: bool | None = Field(
        default=None, description="true: use the biological assembly of an mmCIF file, not the asymmetric unit."
    )

    @field_validator("config_map_key_ref")
    @classmethod
    def _check_key(cls, ref: KeyRef | None) -> KeyRef | None:
        if ref is not None and (problem := _structure_file_problem(ref.key)):
            raise ValueError(problem)
        return ref

    @field_validator("s3")
    @classmethod
    def _check_uri(cls, ref: S3File | None) -> S3File | None:
        if ref is not None and (problem := _structure_file_problem(ref.uri)):
            raise ValueError(problem)
        return ref

    @property
    def suffix(self) -> str:
        """.cif or .pdb: BoltzGen picks the parser by extension."""
        name = self.config_map_key_ref.key if self.config_map_key_ref else self.s3.uri  # type: ignore[union-attr]
        return ".pdb" if name.lower().endswith(".pdb") else ".cif"


class DesignEntity(KubeModel):
    """One entity of the design. Exactly one of protein, dna, rna, ligand, file."""

    one_of = ("protein", "dna", "rna", "ligand", "file")

    protein: DesignProtein | None = Field(default=None, description="A fixed or designed protein chain.")
    dna: DesignNucleicAcid | None = Field(default=None, description="A DNA chain.")
    rna: DesignNucleicAcid | None = Field(default=None, description="An RNA chain.")
    ligand: Ligand | None = Field(default=None, description="A small molecule.")
    file: DesignFile | None = Field(default=None, description="Chains taken from a .cif or .pdb structure file.")

    @property
    def entity_type(self) -> Literal["protein", "dna", "rna", "ligand", "file"]:
        return next(t for t in self.one_of if getattr(self, t) is not None)  # type: ignore[return-value]

    @property
    def entity(self) -> DesignProtein | DesignNucleicAcid | Ligand | DesignFile:
        return getattr(self, self.entity_type)


# ---------------------------------------------------------------------------------------------- constraints


class DesignBond(KubeModel):
    """A covalent bond between two atoms. Designed residues count as if the shortest length were sampled."""

    atom1: AtomRef = Field(description="First atom: chain, residue (1-based), atom name.")
    atom2: AtomRef = Field(description="Second atom: chain, residue (1-based), atom name.")


class TotalLength(KubeModel):
    """Bounds on the total number of residues of the design (BoltzGen resamples lengths until they fit)."""

    cel_rules = (CelRule(rule="self.min <= self.max", message="totalLen.min must not exceed totalLen.max"),)

    min: int = Field(ge=1, le=100000, description="Fewest residues.")
    max: int = Field(ge=1, le=100000, description="Most residues.")


class DesignConstraint(KubeModel):
    """One constraint. Exactly one of bond, totalLen (BoltzGen reads totalLen from the first constraint only)."""

    one_of = ("bond", "total_len")

    bond: DesignBond | None = Field(default=None, description="A covalent bond.")
    total_len: TotalLength | None = Field(default=None, description="Bounds on the total length (first entry only).")


def _entity_ids(entity: str) -> str:
    """CEL: the ids of an entities[] item (a file entity has none the apiserver can see)."""
    return _cel_ids(entity)


ENTITY_IDS_UNIQUE = CelRule(
    rule=f"self.all(a, {_entity_ids('a')}.all(id, self.exists_one(b, id in {_entity_ids('b')})))",
    message="chain ids must be unique across protein, dna, rna and ligand entities",
)


class DesignSpec(KubeModel):
    """BoltzGen's design specification: the entities (targets and what to design) and constraints."""

    cel_rules = (
        CelRule(
            rule="!has(self.constraints) || !self.constraints.exists(c, has(c.totalLen)) || "
            "(has(self.constraints[0].totalLen) && self.constraints.exists_one(c, has(c.totalLen)))",
            message="totalLen must be the first constraint, and the only one (BoltzGen reads only constraints[0])",
            field_path=".constraints",
        ),
    )

    entities: list[DesignEntity] = Field(
        min_length=1,
        max_length=MAX_ENTITIES,
        json_schema_extra=cel_validations(ENTITY_IDS_UNIQUE),
        description="Targets and designed chains, one entry per entity.",
    )
    constraints: list[DesignConstraint] | None = Field(
        default=None, max_length=MAX_CONSTRAINTS, description="Covalent bonds, and a total length bound."
    )

    @model_validator(mode="after")
    def _check_spec(self):
        seen: set[str] = set()
        for entity in self.entities:
            for chain in getattr(entity.entity, "ids", []):
                if chain in seen:
                    raise ValueError(f"chain id {chain} is used by more than one entity")
                seen.add(chain)
        constraints = self.constraints or []
        total = [i for i, c in enumerate(constraints) if c.total_len is not None]
        if total and total != [0]:
            raise ValueError("totalLen must be the first constraint, and the only one")
        return self

    @property
    def files(self) -> list[DesignFile]:
        return [e.file for e in self.entities if e.file is not None]


# ---------------------------------------------------------------------------------------------- run settings


class Protocol(str, Enum):
    """BoltzGen's --protocol (boltzgen 0.3.2 cli `protocol_configs`)."""

    PROTEIN_ANYTHING = "protein-anything"
    PEPTIDE_ANYTHING = "peptide-anything"
    PROTEIN_SMALL_MOLECULE = "protein-small_molecule"
    NANOBODY_ANYTHING = "nanobody-anything"
    ANTIBODY_ANYTHING = "antibody-anything"
    PROTEIN_REDESIGN = "protein-redesign"


class FilterOperator(str, Enum):
    GREATER = ">"
    LESS = "<"


class MetricFilter(KubeModel):
    """A hard filter on one metric: keep designs with metric > threshold (or <)."""

    metric: MetricName = Field(description="Metric column of BoltzGen's metrics (e.g. design_ALA, filter_rmsd_design).")
    operator: FilterOperator = Field(description="> keeps designs above the threshold (higher is better), < below.")
    threshold: float = Field(description="The threshold.")


class MetricWeight(KubeModel):
    """Inverse importance of a metric in the ranking (larger down-weights it); no weight removes the metric."""

    metric: MetricName = Field(description="Metric column (e.g. plip_hbonds_refolded).")
    weight: float | None = Field(default=None, ge=0, description="Inverse-importance weight; omit to drop the metric.")


class SizeBucket(KubeModel):
    """At most count final designs whose designed length lies in minLength..maxLength."""

    cel_rules = (CelRule(rule="self.minLength <= self.maxLength", message="minLength must not exceed maxLength"),)

    min_length: int = Field(ge=1, le=100000, description="Shortest length of the bucket.")
    max_length: int = Field(ge=1, le=100000, description="Longest length of the bucket.")
    count: int = Field(ge=0, le=MAX_DESIGNS, description="Most final designs from this bucket.")


class StepOptions(KubeModel):
    """The BoltzGen step settings a campaign may change (an allow-list of `boltzgen run` flags). Omitted
    fields keep BoltzGen's (protocol-specific) defaults."""

    diffusion_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Designs sampled per trunk run (--diffusion_batch_size). Designs in one batch share a sampled "
        "length. BoltzGen's default depends on the designs per run (1 below 100, else 10).",
    )
    step_scale: float | None = Field(
        default=None, gt=0, le=10, description="Fixed diffusion step scale (--step_scale); a schedule if omitted."
    )
    noise_scale: float | None = Field(
        default=None, gt=0, le=10, description="Fixed diffusion noise scale (--noise_scale); a schedule if omitted."
    )
    inverse_fold_num_sequences: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Sequences per backbone from inverse folding (--inverse_fold_num_sequences); BoltzGen's default "
        "is 1. Each one is a design to refold and score: a campaign produces numDesigns x this many designs (ids "
        "<design>_<k>), and needs that much more GPU time and analysis.",
    )
    inverse_fold_avoid: str | None = Field(
        default=None,
        max_length=20,
        pattern=r"^[ACDEFGHIKLMNPQRSTVWY]*$",
        description="Amino acids inverse folding must not use (--inverse_fold_avoid), e.g. C; empty allows all. "
        "BoltzGen avoids C for peptide, nanobody and antibody protocols by default.",
    )
    alpha: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Quality/diversity trade-off of the final selection (--alpha): 0 quality only, 1 diversity "
        "only. BoltzGen's default: 0.01 for peptide-anything, 0.001 otherwise.",
    )
    filter_biased: bool | None = Field(
        default=None, description="Remove amino-acid composition outliers (--filter_biased); BoltzGen's default true."
    )
    refolding_rmsd_threshold: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Largest RMSD in Ångström between design and refolded structure (--refolding_rmsd_threshold).",
    )
    additional_filters: list[MetricFilter] | None = Field(
        default=None, max_length=32, description="Extra hard filters on metrics (--additional_filters)."
    )
    metrics_override: list[MetricWeight] | None = Field(
        default=None, max_length=32, description="Ranking weights of metrics (--metrics_override)."
    )
    size_buckets: list[SizeBucket] | None = Field(
        default=None, max_length=32, description="Caps on final designs per length range (--size_buckets)."
    )


# A common set of taints of spot / preemptible GPU nodes; spot: true tolerates them all.
SPOT_TOLERATIONS: tuple[Toleration, ...] = (
    Toleration(key="cloud.google.com/gke-spot", operator="Equal", value="true", effect="NoSchedule"),
    Toleration(key="cloud.google.com/gke-preemptible", operator="Equal", value="true", effect="NoSchedule"),
    Toleration(key="kubernetes.azure.com/scalesetpriority", operator="Equal", value="spot", effect="NoSchedule"),
    Toleration(key="eks.amazonaws.com/capacityType", operator="Equal", value="SPOT", effect="NoSchedule"),
    Toleration(key="karpenter.sh/capacity-type", operator="Equal", value="spot", effect="NoSchedule"),
)


class CampaignResources(ComputeResources):
    """What each pod asks for and where it may run: every design shard pod, and the filter pod (boltzgen checks for
    a CUDA device before any step, filtering included)."""

    cpu: Quantity | None = Field(
        default=None,
        description="CPU request and limit of each pod (e.g. 8); the operator's default (chart value workers.cpu, 8) "
        "if omitted. BoltzGen's analysis step runs one process per CPU, each about 1.3 GB of memory once loaded: "
        "see memory.",
    )
    memory: Quantity | None = Field(
        default=None,
        description="Memory request and limit of each pod (e.g. 64Gi); the operator's default (chart value "
        "workers.memory, 64Gi) if omitted. Give at least 1.3 GB per CPU: BoltzGen's analysis step runs one process "
        "per CPU and each takes about 1.3 GB just to load (boltzgen 0.3.2, measured). With less, the worker runs "
        "only as many processes as the memory holds (a slower analysis) and the campaign's condition "
        "AnalysisMemory is False, saying how much is needed. A process killed for memory anyway loses designs "
        "while BoltzGen still exits 0: a shard missing more than 5% of its designs fails as HostOutOfMemory. The "
        "defaults give 8 GiB per CPU.",
    )

    gpus: int | None = Field(
        default=None, ge=1, le=8, description="GPUs per shard pod; the operator's default (usually 1) if omitted."
    )
    node_selector: NodeSelector | None = Field(default=None, description="Node labels the pods must match.")
    tolerations: list[Toleration] | None = Field(default=None, max_length=32, description="Tolerations of the pods.")


Shards = Annotated[
    Annotated[int, Strict()] | Literal["auto"],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {
                    "rule": f"type(self) == int ? (self >= 1 && self <= {MAX_SHARDS}) : self == 'auto'",
                    "message": f"shards must be an integer 1..{MAX_SHARDS} or auto",
                }
            ],
        }
    ),
]


def auto_shards(num_designs: int) -> int:
    """shards: auto -> one shard per 100 designs, at most 200 (and never more shards than designs)."""
    return max(1, min(AUTO_MAX_SHARDS, math.ceil(num_designs / AUTO_DESIGNS_PER_SHARD), num_designs))


# ---------------------------------------------------------------------------------------------- spec

IMMUTABLE_FIELDS = (
    "modelCache",
    "designSpec",
    "protocol",
    "numDesigns",
    "budget",
    "shards",
    "minSuccessfulShardFraction",
    "stepOptions",
    "results",
)
IMMUTABLE_NOTE = " Immutable after creation."

SPEC_RULES = (
    CelRule(
        rule="!has(self.budget) || self.budget <= self.numDesigns",
        message="budget must not exceed numDesigns",
        field_path=".budget",
    ),
    CelRule(
        rule="type(self.shards) == string || self.shards <= self.numDesigns",
        message="shards must not exceed numDesigns",
        field_path=".shards",
    ),
    CelRule(
        rule="!has(self.parallelism) || type(self.shards) == string || self.parallelism <= self.shards",
        message="parallelism must not exceed shards",
        field_path=".parallelism",
    ),
) + tuple(immutable_rule(alias, "BoltzGenCampaign") for alias in IMMUTABLE_FIELDS)


class BoltzGenCampaignSpec(KubeModel):
    """Desired state of a BoltzGenCampaign. The fields that define the run (modelCache, designSpec, protocol,
    numDesigns, budget, shards, minSuccessfulShardFraction, stepOptions, results) are immutable after creation:
    create a new BoltzGenCampaign to re-run. Scheduling fields (parallelism, resources, spot, podMetadata,
    timeoutSeconds, retriesPerShard, queueName, priorityClassName) may change; they apply to Jobs created
    afterwards (a change during the design step reaches the filter Job only)."""

    cel_rules = SPEC_RULES

    model_cache: ObjectName = Field(
        default="default",
        description="Name of the BoltzModelCache (same namespace) holding the BoltzGen weights. "
        "The campaign waits until it is Ready." + IMMUTABLE_NOTE,
    )
    design_spec: DesignSpec = Field(
        description="BoltzGen's design specification (entities and constraints), in camelCase; target "
        "structures by reference (configMapKeyRef or s3)." + IMMUTABLE_NOTE
    )
    protocol: Protocol = Field(
        default=Protocol.PROTEIN_ANYTHING,
        description="BoltzGen protocol: protein-anything, peptide-anything, protein-small_molecule, "
        "nanobody-anything, antibody-anything or protein-redesign." + IMMUTABLE_NOTE,
    )
    num_designs: int = Field(
        ge=1,
        le=MAX_DESIGNS,
        description="Designs to generate across all shards (BoltzGen suggests 10,000 to 60,000 for real work)."
        + IMMUTABLE_NOTE,
    )
    budget: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DESIGNS,
        description=f"Designs in the final quality- and diversity-ranked set (at most numDesigns). "
        f"BoltzGen's default ({DEFAULT_BUDGET}, or numDesigns if fewer) if omitted." + IMMUTABLE_NOTE,
    )
    shards: Shards = Field(
        default="auto",
        description=f"Design shards (indexes of one Indexed Job; each generates its share of numDesigns): an "
        f"integer 1..{MAX_SHARDS} (at most numDesigns), or auto: ceil(numDesigns / {AUTO_DESIGNS_PER_SHARD}), "
        f"at most {AUTO_MAX_SHARDS}." + IMMUTABLE_NOTE,
    )
    parallelism: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SHARDS,
        description="Most shard pods (and so GPU sets) running at once; all shards if omitted. Read when the design "
        "Job is created: a change later does not reach it (the operator never modifies a Job).",
    )
    min_successful_shard_fraction: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Fraction of shards that must succeed (after retries) for the campaign to go on to filtering "
        "with the designs it has; below it the campaign fails." + IMMUTABLE_NOTE,
    )
    step_options: StepOptions = Field(
        default=StepOptions(), description="Allow-listed BoltzGen step settings." + IMMUTABLE_NOTE
    )
    resources: CampaignResources = Field(
        default=CampaignResources(), description="GPUs, CPU, memory and placement of the shard pods."
    )
    spot: bool = Field(
        default=False,
        description="true: tolerate the usual spot/preemptible node taints (cloud.google.com/gke-spot, "
        "cloud.google.com/gke-preemptible, kubernetes.azure.com/scalesetpriority=spot, "
        "eks.amazonaws.com/capacityType=SPOT, karpenter.sh/capacity-type=spot, all NoSchedule). Preempted "
        "shards are re-run and not counted as retries.",
    )
    pod_metadata: PodMetadata | None = Field(default=None, description="Extra labels and annotations for the pods.")
    results: ResultsStore | None = Field(
        default=None,
        description="Where to store the designs: exactly one of s3, pvc. The operator's default store if omitted."
        + IMMUTABLE_NOTE,
    )
    queue_name: str | None = Field(
        default=None, max_length=253, description="Kueue LocalQueue to submit the Jobs to (kueue.x-k8s.io/queue-name)."
    )
    priority_class_name: str | None = Field(default=None, max_length=253, description="PriorityClass of the pods.")
    timeout_seconds: int = Field(
        default=86400,
        ge=60,
        description="Time limit in seconds of the design Job (across all shards and attempts), and again of the "
        "filter Job (their activeDeadlineSeconds).",
    )
    retries_per_shard: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a shard after retryable failures (backoffLimitPerIndex). A shard out of GPU memory, "
        "or short of designs for lack of host memory (HostOutOfMemory), fails without retries (the shard only); invalid input and an unusable model cache fail the campaign at once; "
        "preemption and eviction are not counted.",
    )

    @model_validator(mode="after")
    def _check_counts(self):
        if self.budget is not None and self.budget > self.num_designs:
            raise ValueError("budget must not exceed numDesigns")
        if isinstance(self.shards, int) and not 1 <= self.shards <= min(MAX_SHARDS, self.num_designs):
            raise ValueError(f"shards must be an integer 1..{MAX_SHARDS}, at most numDesigns, or auto")
        # As the CRD's rule: only against an explicit count. With shards: auto the count follows numDesigns, and a
        # larger parallelism is harmless (the design Job's is capped at the shard count); refusing it here would
        # turn an edit the apiserver accepted (parallelism is mutable) into a Failed campaign with running Jobs.
        if self.parallelism is not None and isinstance(self.shards, int) and self.parallelism > self.shards:
            raise ValueError("parallelism must not exceed shards")
        return self

    @property
    def shard_count(self) -> int:
        """The number of shards, with auto resolved."""
        return auto_shards(self.num_designs) if self.shards == "auto" else int(self.shards)

    @property
    def effective_budget(self) -> int:
        return self.budget if self.budget is not None else min(DEFAULT_BUDGET, self.num_designs)

    def designs_in_shard(self, index: int) -> int:
        """Designs shard `index` generates: numDesigns split as evenly as possible, lower indexes first."""
        base, extra = divmod(self.num_designs, self.shard_count)
        return base + (1 if index < extra else 0)

    @property
    def tolerations(self) -> list[Toleration]:
        """The pods' tolerations: resources.tolerations, plus SPOT_TOLERATIONS when spot."""
        own = list(self.resources.tolerations or [])
        return own + [t for t in SPOT_TOLERATIONS if t not in own] if self.spot else own


# ---------------------------------------------------------------------------------------------- status


class CampaignPhase(str, Enum):
    PENDING = "Pending"
    WAITING_FOR_MODEL_CACHE = "WaitingForModelCache"
    DESIGNING = "Designing"
    FILTERING = "Filtering"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class CampaignConditionType(str, Enum):
    MODEL_CACHE_READY = "ModelCacheReady"
    DESIGN_JOB_CREATED = "DesignJobCreated"
    DESIGNS_COMPLETE = "DesignsComplete"  # enough shards succeeded (minSuccessfulShardFraction)
    FILTER_JOB_CREATED = "FilterJobCreated"
    ANALYSIS_MEMORY = "AnalysisMemory"  # False: resources.memory cannot hold one analysis process per CPU
    COMPLETE = "Complete"
    FAILED = "Failed"


class CampaignProgress(StatusModel):
    """Counts of shards and designs."""

    shards_total: int | None = Field(default=None, ge=0, description="Shards of the design Job.")
    shards_succeeded: int | None = Field(default=None, ge=0, description="Shards that finished.")
    shards_failed: int | None = Field(default=None, ge=0, description="Shards that failed after their retries.")
    shards_running: int | None = Field(
        default=None, ge=0, description="Shards with a pod now (running, or waiting for a node)."
    )
    designs_requested: int | None = Field(
        default=None,
        ge=0,
        description="numDesigns x inverseFoldNumSequences: each inverse-folded sequence is a design of its own.",
    )
    designs_completed: int | None = Field(
        default=None,
        ge=0,
        description="Designs of the finished shards (their share of numDesigns); once filtered, the designs merged.",
    )
    designs_produced: int | None = Field(
        default=None,
        ge=0,
        description="Designs the merged shards produced (rows of their metrics), counted by the filter. A shard may "
        "be short by up to 5% (designs BoltzGen could not analyse); more fails it as HostOutOfMemory.",
    )
    designs_dropped_as_duplicates: int | None = Field(
        default=None,
        ge=0,
        description="Designs BoltzGen's filter dropped before ranking because an earlier design had the same designed "
        "sequence (it keeps the first): why a campaign can select fewer than budget.",
    )
    designs_selected: int | None = Field(
        default=None, ge=0, description="Designs in the final set (at most budget)."
    )


class CampaignEstimate(StatusModel):
    """A rough cost estimate, written when the campaign starts."""

    gpu_hours: float | None = Field(default=None, ge=0, description="Estimated GPU hours for all designs.")
    basis: str | None = Field(
        default=None, description="Where the per-design figure comes from (a measurement or a published figure)."
    )


class TopDesign(StatusModel):
    """One of the best final designs."""

    rank: int = Field(ge=1, description="Rank in the final set (1 is best).")
    id: str = Field(description="BoltzGen's design id (the structure file's name without extension).")
    sequence: str | None = Field(default=None, description="Designed sequence (chains separated by ':').")
    metrics: dict[str, float] = Field(default={}, description="Headline metrics (e.g. design_iptm, filter_rmsd).")


class CampaignResults(StatusModel):
    """Where the designs are, and the best few."""

    uri: str | None = Field(default=None, description="Base URI of the results (s3://... or pvc://claim/path).")
    final_designs_uri: str | None = Field(
        default=None, description="URI of the final quality- and diversity-ranked set (final_<budget>_designs)."
    )
    metrics_csv_uri: str | None = Field(
        default=None, description="URI of the metrics table of all designs considered (all_designs_metrics.csv)."
    )
    top_designs: list[TopDesign] = Field(
        default=[], description=f"The best final designs, best first (at most {MAX_TOP_DESIGNS})."
    )


class BoltzGenCampaignStatus(StatusModel):
    """Observed state of a BoltzGenCampaign, written by the operator."""

    phase: CampaignPhase | None = Field(
        default=None, description="Pending, WaitingForModelCache, Designing, Filtering, Succeeded or Failed."
    )
    conditions: list[Condition] = Field(
        default=[],
        json_schema_extra=CONDITIONS_SCHEMA_EXTRA,
        description="Conditions: ModelCacheReady, DesignJobCreated, DesignsComplete, FilterJobCreated, Complete, "
        "Failed; AnalysisMemory (False: resources.memory is below 1.3 GB per CPU for BoltzGen's analysis processes).",
    )
    shards: str | None = Field(default=None, description="Succeeded/total shards as text (for kubectl get).")
    progress: CampaignProgress | None = Field(default=None, description="Counts of shards and designs.")
    estimate: CampaignEstimate | None = Field(default=None, description="Estimated GPU hours and its basis.")
    results: CampaignResults | None = Field(default=None, description="Results location and best designs.")
    job_names: list[str] = Field(default=[], description="Names of the design and filter Jobs.")
    start_time: datetime | None = Field(default=None, description="When the design Job started.")
    completion_time: datetime | None = Field(default=None, description="When the campaign succeeded or failed.")
    message: str | None = Field(default=None, description="Human-readable summary of the current state or the error.")
    observed_generation: int | None = Field(default=None, description="The .metadata.generation this status reflects.")


class BoltzGenCampaign(StatusModel):
    """A whole BoltzGenCampaign object: `BoltzGenCampaign.model_validate(body)` on a kopf body or API dict."""

    api_version: Literal["boltz-operator.io/v1alpha1"] = API_VERSION
    kind: Literal["BoltzGenCampaign"] = "BoltzGenCampaign"
    metadata: dict[str, Any] = {}
    spec: BoltzGenCampaignSpec
    status: BoltzGenCampaignStatus = BoltzGenCampaignStatus()


CAMPAIGN_RESOURCE = ResourceKind(
    kind="BoltzGenCampaign",
    plural="boltzgencampaigns",
    singular="boltzgencampaign",
    short_names=("bgc",),
    spec_model=BoltzGenCampaignSpec,
    status_model=BoltzGenCampaignStatus,
    description=(
        "BoltzGenCampaign runs one BoltzGen design campaign: numDesigns designs generated by GPU shards of an "
        "Indexed Job, then one filter Job that ranks them and selects a diverse final set of budget designs."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "string", "Where the campaign is."),
        PrinterColumn("Shards", ".status.shards", "string", "Succeeded/total shards."),
        PrinterColumn("Designs", ".status.progress.designsCompleted", "integer", "Designs generated so far."),
        AGE_COLUMN,
    ),
)
