"""BoltzGen's design-specification language: `spec.designSpec` of a BoltzGenCampaign.

It follows BoltzGen's design-specification YAML (boltzgen 0.3.2, `boltzgen/data/parse/schema.py`;
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

import re
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .common import (
    IDS_DESCRIPTION,
    MAX_SEQUENCE_LENGTH,
    AtomRef,
    CelRule,
    ChainIds,
    KeyRef,
    KubeModel,
    Ligand,
    S3File,
    cel_ids,
    cel_validations,
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

STRUCTURE_SUFFIXES = (".cif", ".pdb")

# ---------------------------------------------------------------------------------------------- residue ranges

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


# Built by one function, so annotated as aliases: mypy sees str fields (the validators and schema are pydantic's).
ResidueRange: TypeAlias = _range_type(RESIDUE_RANGE)  # type: ignore[valid-type]
ResidueRangeOrAll: TypeAlias = _range_type(RESIDUE_RANGE_OR_ALL)  # type: ignore[valid-type]
InsertionLength: TypeAlias = _range_type(INSERTION_LENGTH)  # type: ignore[valid-type]
RANGE_HINT = "1-based residue indices (label_seq_id): comma-separated N, N..M, ..M or N.. (e.g. 2..50,55..)."

# A designed protein: amino acids, and numbers (or N..M ranges) of residues to design, e.g. 15..20AAAAVT18PPP.
DESIGN_SEQUENCE = r"^([A-Z]|[0-9]+(\.\.[0-9]+)?)+$"
AMINO_ACIDS = r"^[ACDEFGHIKLMNPQRSTVWY]+$"


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
    not_binding: ResidueRange | None = Field(default=None, description="Residues not to bind. " + RANGE_HINT)


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


FIXED_ONLY = (
    "bindingTypes name residues to contact or avoid, which must not be designed: this chain has no fixed residue"
)
DESIGNED_ONLY = "secondaryStructure conditions designed residues: this chain has none (add numbers to its sequence)"


class DesignProtein(KubeModel):
    """A protein chain: fixed (letters only) or designed (numbers give residues to design). BoltzGen takes
    bindingTypes only on fixed residues and secondaryStructure only on designed ones."""

    cel_rules = (
        CelRule(
            rule="!has(self.bindingTypes) || self.sequence.matches('[A-Z]')",
            message=FIXED_ONLY,
            field_path=".bindingTypes",
        ),
        CelRule(
            rule="!has(self.secondaryStructure) || self.sequence.matches('[0-9]')",
            message=DESIGNED_ONLY,
            field_path=".secondaryStructure",
        ),
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
        # one_of names exactly these fields
        return next(t for t in self.one_of if getattr(self, t) is not None)  # type: ignore[misc]

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


# An entity spells its ids as a Boltz input's sequences[] item does; a file entity has none the apiserver can see.
ENTITY_IDS_UNIQUE = CelRule(
    rule=f"self.all(a, {cel_ids('a')}.all(id, self.exists_one(b, id in {cel_ids('b')})))",
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
