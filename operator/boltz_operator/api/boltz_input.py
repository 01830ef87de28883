"""The Boltz-2 input language of a BoltzPrediction spec (and of a screen's target): sequences with their MSAs and
modifications, constraints (bonds, pockets, contacts) and templates.

It follows Boltz's YAML input (https://github.com/jwohlwend/boltz/blob/main/docs/prediction.md) with Kubernetes
spellings: camelCase, chain ids always a list (`ids`), files referenced from ConfigMaps, Secrets or S3 instead of
host paths. `boltz_operator.render` turns it into the Boltz YAML.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .common import (
    IDS_DESCRIPTION,
    MAX_IDS,
    MAX_SEQUENCE_LENGTH,
    AtomName,
    AtomRef,
    CcdCode,
    CelRule,
    ChainId,
    ChainIds,
    KeyRef,
    KubeModel,
    Ligand,
    PvcResults,
    S3File,
    S3Location,
    SecretRef,
    Url,
)

# Bounds keep the CEL rules within the apiserver's cost limits: estimates are priced at maxItems, and the
# per-rule runtime limit (1M) is reached by a 64 x 16-id sequences list. 32 entities of up to 16 copies each is
# far more than fits a GPU.
MAX_SEQUENCES = 32
MAX_MODIFICATIONS = 64
MAX_CONSTRAINTS = 32
MAX_POCKET_CONTACTS = 24
MAX_TEMPLATES = 16
# Boltz's affinity module refuses ligands with more (heavy) atoms than this.
MAX_AFFINITY_LIGAND_ATOMS = 128

# ---------------------------------------------------------------------------------------------- sequences


class Modification(KubeModel):
    """A modified residue of a polymer chain."""

    position: int = Field(ge=1, description="Residue index, starting at 1.")
    ccd: CcdCode = Field(description="CCD code of the modified residue (e.g. SEP, MSE).")


MODIFICATIONS_IN_SEQUENCE = CelRule(
    rule="!has(self.modifications) || self.modifications.all(m, m.position <= size(self.sequence))",
    message="modifications[].position must be within the sequence (1..length)",
)


class MsaSource(KubeModel):
    """The multiple sequence alignment of a protein. Exactly one of empty, server, configMapKeyRef,
    secretKeyRef, s3. Absent means server. Boltz reads .a3m, or .csv (columns key, sequence) to pair MSAs
    across chains. Boltz cannot mix MSA files and server MSAs in one input (empty mixes with either)."""

    one_of = ("empty", "server", "config_map_key_ref", "secret_key_ref", "s3")
    cel_rules = tuple(
        CelRule(
            rule=f"!has(self.{field}) || {value}.lowerAscii().endsWith('.a3m') "
            f"|| {value}.lowerAscii().endsWith('.csv')",
            message="the MSA file name must end in .a3m or .csv (Boltz picks the parser by extension)",
        )
        for field, value in (
            ("configMapKeyRef", "self.configMapKeyRef.key"),
            ("secretKeyRef", "self.secretKeyRef.key"),
            ("s3", "self.s3.uri"),
        )
    )

    empty: bool | None = Field(
        default=None, description="true: single-sequence mode, no MSA (faster, usually less accurate)."
    )
    server: bool | None = Field(
        default=None, description="true: compute the MSA on the MSA server (spec.msaServer) when the run starts."
    )
    config_map_key_ref: KeyRef | None = Field(
        default=None, description="An .a3m or .csv file stored in a ConfigMap key (at most about 1 MiB)."
    )
    secret_key_ref: KeyRef | None = Field(default=None, description="An .a3m or .csv file stored in a Secret key.")
    s3: S3File | None = Field(default=None, description="An .a3m or .csv object in S3, downloaded when the run starts.")


class Protein(KubeModel):
    """A protein chain (or identical copies of it)."""

    cel_rules = (MODIFICATIONS_IN_SEQUENCE,)

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[A-Z]+$",
        description="Amino-acid sequence in upper-case one-letter codes, no spaces (X for unknown).",
    )
    msa: MsaSource | None = Field(
        default=None,
        description="The MSA: exactly one of empty, server, configMapKeyRef, secretKeyRef, s3. Omitted: computed "
        "by the MSA server (like server: true). Boltz cannot mix MSA files and server MSAs in one input "
        "(empty mixes with either).",
    )
    modifications: list[Modification] | None = Field(
        default=None, max_length=MAX_MODIFICATIONS, description="Modified residues."
    )
    cyclic: bool | None = Field(default=None, description="true for a cyclic peptide.")


class NucleicAcid(KubeModel):
    """A nucleic-acid chain (or identical copies of it)."""

    cel_rules = (MODIFICATIONS_IN_SEQUENCE,)

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    sequence: str
    modifications: list[Modification] | None = Field(
        default=None, max_length=MAX_MODIFICATIONS, description="Modified residues."
    )
    cyclic: bool | None = Field(default=None, description="true for a cyclic chain.")


class Dna(NucleicAcid):
    """A DNA chain (or identical copies of it)."""

    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[ACGTN]+$",
        description="DNA sequence in upper-case one-letter codes (A, C, G, T, N), no spaces.",
    )


class Rna(NucleicAcid):
    """An RNA chain (or identical copies of it)."""

    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[ACGUN]+$",
        description="RNA sequence in upper-case one-letter codes (A, C, G, U, N), no spaces.",
    )


class SequenceEntry(KubeModel):
    """One entity of the complex. Exactly one of protein, dna, rna, ligand."""

    one_of = ("protein", "dna", "rna", "ligand")

    protein: Protein | None = Field(default=None, description="A protein chain.")
    dna: Dna | None = Field(default=None, description="A DNA chain.")
    rna: Rna | None = Field(default=None, description="An RNA chain.")
    ligand: Ligand | None = Field(default=None, description="A small molecule.")

    @property
    def entity_type(self) -> Literal["protein", "dna", "rna", "ligand"]:
        # one_of names exactly these fields
        return next(t for t in self.one_of if getattr(self, t) is not None)  # type: ignore[misc]

    @property
    def entity(self) -> Protein | NucleicAcid | Ligand:
        return getattr(self, self.entity_type)

    @property
    def ids(self) -> list[str]:
        return self.entity.ids


# ---------------------------------------------------------------------------------------------- constraints


class TokenRef(KubeModel):
    """A residue of a polymer chain, or an atom of a ligand. Exactly one of residue, atom."""

    one_of = ("residue", "atom")

    chain: ChainId = Field(description="Chain id.")
    residue: int | None = Field(default=None, ge=1, description="Residue index, starting at 1 (polymer chains).")
    atom: AtomName | None = Field(default=None, description="Atom name (ligand chains).")


MAX_DISTANCE_DESCRIPTION = "Largest allowed distance in Ångström (4 to 20)."
FORCE_DESCRIPTION = "true: enforce the constraint with a potential during sampling, not only as conditioning."


class BondConstraint(KubeModel):
    """A covalent bond between two atoms (CCD ligands and canonical residues only)."""

    atom1: AtomRef = Field(description="First atom.")
    atom2: AtomRef = Field(description="Second atom.")


class PocketConstraint(KubeModel):
    """A binding pocket: the binder chain lies within maxDistance of each contact."""

    binder: ChainId = Field(description="Chain id of the binder (a ligand, protein, DNA or RNA chain).")
    contacts: list[TokenRef] = Field(
        min_length=1, max_length=MAX_POCKET_CONTACTS, description="Residues or atoms forming the pocket."
    )
    max_distance: float = Field(default=6.0, ge=4.0, le=20.0, description=MAX_DISTANCE_DESCRIPTION)
    force: bool = Field(default=False, description=FORCE_DESCRIPTION)


class ContactConstraint(KubeModel):
    """Two residues or atoms within maxDistance of each other."""

    token1: TokenRef = Field(description="First residue or atom.")
    token2: TokenRef = Field(description="Second residue or atom.")
    max_distance: float = Field(default=6.0, ge=4.0, le=20.0, description=MAX_DISTANCE_DESCRIPTION)
    force: bool = Field(default=False, description=FORCE_DESCRIPTION)


class Constraint(KubeModel):
    """One constraint. Exactly one of bond, pocket, contact."""

    one_of = ("bond", "pocket", "contact")

    bond: BondConstraint | None = Field(default=None, description="A covalent bond.")
    pocket: PocketConstraint | None = Field(default=None, description="A binding pocket.")
    contact: ContactConstraint | None = Field(default=None, description="A residue/atom contact.")


# ---------------------------------------------------------------------------------------------- templates


class FileRef(KubeModel):
    """A file from a ConfigMap key or an S3 object. Exactly one of configMapKeyRef, s3."""

    one_of = ("config_map_key_ref", "s3")

    config_map_key_ref: KeyRef | None = Field(
        default=None, description="A ConfigMap key holding the file (up to ~1 MiB)."
    )
    s3: S3File | None = Field(default=None, description="An S3 object, downloaded when the run starts.")


class Template(KubeModel):
    """A structural template for protein chains. Exactly one of cif, pdb."""

    one_of = ("cif", "pdb")
    cel_rules = (
        CelRule(
            rule="!(has(self.chainIds) && has(self.templateIds)) || size(self.chainIds) == size(self.templateIds)",
            message="chainIds and templateIds must have the same length (chainIds[i] is templated by templateIds[i])",
        ),
        CelRule(
            rule="!(has(self.force) && self.force) || has(self.threshold)",
            message="force: true needs a threshold (Ångström the prediction may deviate from the template)",
        ),
    )

    cif: FileRef | None = Field(
        default=None, description="The template as an mmCIF file: exactly one of configMapKeyRef, s3."
    )
    pdb: FileRef | None = Field(
        default=None,
        description="The template as a PDB file (chains become A1, A2, B1...): exactly one of configMapKeyRef, s3.",
    )
    chain_ids: list[ChainId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDS,
        description="Protein chain ids to template; Boltz picks the best matches when omitted.",
    )
    template_ids: list[Annotated[str, StringConstraints(max_length=8)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDS,
        description="Chain ids in the template file, one for each of chainIds, to fix the mapping.",
    )
    force: bool = Field(default=False, description="true: a potential keeps the backbone near the template.")
    threshold: float | None = Field(
        default=None,
        ge=0,
        description="With force: distance in Ångström the prediction may deviate from the template.",
    )


# ---------------------------------------------------------------------------------------------- MSA server


class MsaStore(KubeModel):
    """Where MSAs computed by the MSA server are kept, keyed by server, pairing and sequences: a prediction of a
    protein whose MSA is there reuses it instead of asking the server again. Exactly one of s3, pvc."""

    one_of = ("s3", "pvc")

    s3: S3Location | None = Field(default=None, description="An S3 prefix; MSAs go under <uri>/<namespace>/<key>/.")
    pvc: PvcResults | None = Field(
        default=None,
        description="A PVC (ReadWriteMany for runs on several nodes); MSAs go under <subPath>/<namespace>/<key>/.",
    )


class PairingStrategy(str, Enum):
    GREEDY = "greedy"
    COMPLETE = "complete"


class MsaServer(KubeModel):
    """The MMseqs2 server that computes MSAs for proteins without an MSA file."""

    url: Url | None = Field(
        default=None, description="Server URL. Boltz's default (the public ColabFold server) if omitted."
    )
    pairing_strategy: PairingStrategy = Field(
        default=PairingStrategy.GREEDY, description="How MSAs of different chains are paired: greedy or complete."
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with the keys username and password (basic auth), or apiKey (sent in apiKeyHeader).",
    )
    api_key_header: str | None = Field(
        default=None, max_length=256, description="HTTP header carrying the API key (e.g. X-API-Key)."
    )
    store: MsaStore | None = Field(
        default=None,
        description="Where computed MSAs are kept and reused (one search per sequence): exactly one of s3, pvc. "
        "The operator's default MSA store if omitted.",
    )
