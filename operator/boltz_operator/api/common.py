"""Building blocks shared by the custom resources: the base model, CEL rule helpers, and small shared types.

The pydantic models in this package are the one source of truth for the CRDs: `boltz_operator.crdgen` turns
their JSON schema (field descriptions, defaults, bounds, enums) and the CEL rules declared here into the
structural OpenAPI schema the apiserver validates with. Python attributes are snake_case; the CR spells
them camelCase (the alias). Parse a whole object with `BoltzPrediction.model_validate(body)`, or one part with
`BoltzPredictionSpec.model_validate(body["spec"])`; write back with `to_body()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, Final, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP: Final = "boltz-operator.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "boltz-operator.io/v1alpha1"  # GROUP/VERSION, spelled out: a Literal type for the models
CATEGORIES = ("boltz",)


# ---------------------------------------------------------------------------------------------- CEL rules


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry. `field_path` points the error at a child field (e.g. `.sequences`)."""

    rule: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


def cel_validations(*rules: CelRule) -> dict[str, Any]:
    """`json_schema_extra` for a Field: attaches CEL rules to that field's schema node."""
    return {"x-kubernetes-validations": [r.to_schema() for r in rules]}


def immutable_rule(alias: str, kind: str) -> CelRule:
    """A transition rule on the spec: the field may be neither changed, added nor removed. (On the field itself,
    `self == oldSelf` would not run when the field is added or removed.)"""
    return CelRule(
        rule=f"has(self.{alias}) == has(oldSelf.{alias}) && (!has(self.{alias}) || self.{alias} == oldSelf.{alias})",
        message=f"spec.{alias} is immutable after creation; create a new {kind} to re-run",
        field_path=f".{alias}",
    )


def _is_set(value: Any) -> bool:
    # A flag variant (`empty: true`) counts only when true, matching the CEL `has(x) && x`.
    return value is not None and value is not False


def _add_model_rules(schema: dict[str, Any], cls: type[KubeModel]) -> None:
    rules = [r.to_schema() for r in cls.model_rules()]
    if rules:
        schema.setdefault("x-kubernetes-validations", []).extend(rules)


class KubeModel(BaseModel):
    """Base of every CR model: camelCase aliases, unknown fields rejected, CEL rules exported to the schema.

    Subclasses declare `one_of` (Python attribute names of which exactly one must be set; enforced in Python
    and as a CEL rule) and `cel_rules` (further CEL rules, enforced by the apiserver only).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra=_add_model_rules,
    )

    one_of: ClassVar[tuple[str, ...]] = ()
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    @classmethod
    def _alias(cls, name: str) -> str:
        return cls.model_fields[name].alias or name

    @classmethod
    def one_of_message(cls) -> str:
        return "set exactly one of " + ", ".join(cls._alias(n) for n in cls.one_of)

    @classmethod
    def model_rules(cls) -> list[CelRule]:
        rules = list(cls.cel_rules)
        if cls.one_of:
            terms = []
            for name in cls.one_of:
                alias = cls._alias(name)
                is_flag = cls.model_fields[name].annotation in (bool, bool | None)
                present = f"(has(self.{alias}) && self.{alias})" if is_flag else f"has(self.{alias})"
                terms.append(f"({present} ? 1 : 0)")
            rules.insert(0, CelRule(rule=" + ".join(terms) + " == 1", message=cls.one_of_message()))
        return rules

    @model_validator(mode="after")
    def _check_one_of(self):
        if self.one_of and sum(_is_set(getattr(self, n)) for n in self.one_of) != 1:
            raise ValueError(self.one_of_message())
        return self

    def to_body(self) -> dict[str, Any]:
        """The CR spelling: camelCase keys, unset optional fields left out, JSON types (for patches/status)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(KubeModel):
    """Status is written by (possibly another version of) the operator: tolerate fields this version lacks."""

    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------------------------------------- shared types

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
# Boltz keeps chain names in a 5-character field; ids also name files (msa-<id>.a3m), so keep them plain.
CHAIN_ID = r"^[A-Za-z0-9]{1,5}$"
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
S3_OBJECT_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$"
# resource.Quantity as Kubernetes validates it (the pattern of core/v1 quantities in the OpenAPI spec)
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
ConfigKey = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=CONFIG_KEY)]
ChainId = Annotated[str, StringConstraints(pattern=CHAIN_ID, max_length=5)]
S3Uri = Annotated[str, StringConstraints(pattern=S3_URI, max_length=1024)]
S3ObjectUri = Annotated[str, StringConstraints(pattern=S3_OBJECT_URI, max_length=1024)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://", max_length=2048)]


def _quantity_to_str(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


# A resource quantity: `cpu: 4` and `cpu: "500m"` are both valid in YAML, so int-or-string in the CRD,
# always a string in Python (what kubernetes.client's V1ResourceRequirements takes).
Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    StringConstraints(pattern=QUANTITY, max_length=64),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class KeyRef(KubeModel):
    """A key of a ConfigMap or Secret in the prediction's namespace."""

    name: ObjectName = Field(description="Name of the ConfigMap or Secret, in the same namespace.")
    key: ConfigKey = Field(description="Key within it whose value is the file content.")


class SecretRef(KubeModel):
    """A Secret in the same namespace."""

    name: ObjectName = Field(description="Name of the Secret, in the same namespace.")


class S3Location(KubeModel):
    """An S3 (or S3-compatible) prefix with its endpoint and credentials."""

    uri: S3Uri = Field(description="Location as s3://bucket/prefix.")
    endpoint: Url | None = Field(
        default=None,
        description="Endpoint URL of an S3-compatible store (MinIO, Ceph RGW, SeaweedFS...). Omit for AWS S3.",
    )
    region: str | None = Field(default=None, max_length=64, description="Region of the bucket, if the store needs one.")
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description=(
            "Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optionally AWS_SESSION_TOKEN), "
            "passed to the worker as environment variables. Omit to use the pod's ambient identity "
            "(IRSA, workload identity)."
        ),
    )


class S3File(KubeModel):
    """An S3 object, fetched with the results store's S3 endpoint and credentials."""

    uri: S3ObjectUri = Field(description="Object location as s3://bucket/key.")


class PvcResults(KubeModel):
    """Results on a PVC in the same namespace."""

    cel_rules = (
        CelRule(rule="!has(self.subPath) || !self.subPath.contains('..')", message="subPath must not contain '..'"),
    )

    claim_name: ObjectName = Field(description="Name of the PVC (ReadWriteMany if runs land on several nodes).")
    sub_path: str | None = Field(
        default=None, max_length=1024, pattern=r"^[^/]", description="Directory within the volume (relative)."
    )


class ResultsStore(KubeModel):
    """Where the results go. Exactly one of s3, pvc."""

    one_of = ("s3", "pvc")

    s3: S3Location | None = Field(default=None, description="An S3 prefix; results go under <uri>/<namespace>/<name>/.")
    pvc: PvcResults | None = Field(default=None, description="A PVC; results go under <subPath>/<namespace>/<name>/.")


# ---------------------------------------------------------------------------------------------- chains and molecules
# Spelled the same in a Boltz input (BoltzPrediction) and a BoltzGen design spec (BoltzGenCampaign).

# Bounds keep the CEL rules within the apiserver's cost limits: estimates are priced at maxItems, and the
# per-rule runtime limit (1M) is reached by a 64 x 16-id sequences list.
MAX_IDS = 16
MAX_SEQUENCE_LENGTH = 10000
MAX_SMILES_LENGTH = 2048

CcdCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,5}$", max_length=5)]
AtomName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9']{1,6}$", max_length=6)]
ChainIds = Annotated[
    list[ChainId],
    Field(min_length=1, max_length=MAX_IDS, json_schema_extra={"x-kubernetes-list-type": "set"}),
]

IDS_DESCRIPTION = (
    "Chain ids of this entity, unique across all sequences. One id per copy: [A, B] is a homodimer. "
    "Up to 5 letters or digits each."
)


def cel_ids(item: str) -> str:
    """CEL: the ids of an item holding exactly one entity under protein, dna, rna or ligand (a Boltz input's
    sequences[] item, a design spec's entities[] item); [] for any other entity."""
    return (
        f"(has({item}.protein) ? {item}.protein.ids : has({item}.dna) ? {item}.dna.ids : "
        f"has({item}.rna) ? {item}.rna.ids : has({item}.ligand) ? {item}.ligand.ids : [])"
    )


class AtomRef(KubeModel):
    """One atom: chain, residue index, atom name."""

    chain: ChainId = Field(description="Chain id.")
    residue: int = Field(ge=1, description="Residue index, starting at 1 (1 for a ligand).")
    atom: AtomName = Field(description="Standard atom name, as in the component's CCD entry (e.g. SG, C1).")


class Ligand(KubeModel):
    """A small molecule (or identical copies of it). Exactly one of smiles, ccd."""

    one_of = ("smiles", "ccd")

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    smiles: str | None = Field(
        default=None, min_length=1, max_length=MAX_SMILES_LENGTH, description="The molecule as a SMILES string."
    )
    ccd: CcdCode | None = Field(
        default=None, description="The molecule as a Chemical Component Dictionary code (e.g. SAH)."
    )


# ---------------------------------------------------------------------------------------------- pods


class TolerationOperator(str, Enum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(str, Enum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(KubeModel):
    """A pod toleration, as in core/v1 PodSpec.tolerations."""

    key: str | None = Field(
        default=None, max_length=316, description="Taint key; empty with operator Exists matches all."
    )
    operator: TolerationOperator | None = Field(default=None, description="Exists or Equal (the default).")
    value: str | None = Field(default=None, max_length=63, description="Taint value to match when operator is Equal.")
    effect: TaintEffect | None = Field(default=None, description="Taint effect to match; empty matches all effects.")
    toleration_seconds: int | None = Field(
        default=None, description="For NoExecute: how long the pod stays bound after the taint appears."
    )


# A common set of taints of spot / preemptible GPU nodes; spot: true tolerates them all.
SPOT_TOLERATIONS: tuple[Toleration, ...] = (
    Toleration(
        key="cloud.google.com/gke-spot", operator=TolerationOperator.EQUAL, value="true", effect=TaintEffect.NO_SCHEDULE
    ),
    Toleration(
        key="cloud.google.com/gke-preemptible",
        operator=TolerationOperator.EQUAL,
        value="true",
        effect=TaintEffect.NO_SCHEDULE,
    ),
    Toleration(
        key="kubernetes.azure.com/scalesetpriority",
        operator=TolerationOperator.EQUAL,
        value="spot",
        effect=TaintEffect.NO_SCHEDULE,
    ),
    Toleration(
        key="eks.amazonaws.com/capacityType",
        operator=TolerationOperator.EQUAL,
        value="SPOT",
        effect=TaintEffect.NO_SCHEDULE,
    ),
    Toleration(
        key="karpenter.sh/capacity-type",
        operator=TolerationOperator.EQUAL,
        value="spot",
        effect=TaintEffect.NO_SCHEDULE,
    ),
)


def with_spot(own: list[Toleration] | None, spot: bool) -> list[Toleration]:
    """A pods' tolerations: its own (resources.tolerations), plus SPOT_TOLERATIONS not already there when `spot`."""
    own = list(own or [])
    return own + [t for t in SPOT_TOLERATIONS if t not in own] if spot else own


NodeSelector = Annotated[
    dict[Annotated[str, StringConstraints(max_length=317)], Annotated[str, StringConstraints(max_length=63)]],
    Field(max_length=32),
]


StringMap = Annotated[
    dict[Annotated[str, StringConstraints(max_length=317)], Annotated[str, StringConstraints(max_length=4096)]],
    Field(max_length=64),
]


class PodMetadata(KubeModel):
    """Extra labels and annotations for the worker pod (e.g. for cost attribution or a service mesh)."""

    labels: StringMap = Field(default={}, description="Labels added to the pod; the operator's own labels win.")
    annotations: StringMap = Field(default={}, description="Annotations added to the pod.")


class ComputeResources(KubeModel):
    """CPU and memory for a worker container."""

    cpu: Quantity | None = Field(
        default=None, description="CPU request (e.g. 4 or 500m); the operator's default if omitted."
    )
    memory: Quantity | None = Field(
        default=None, description="Memory request and limit (e.g. 32Gi); the operator's default if omitted."
    )


# ---------------------------------------------------------------------------------------------- status


class ConditionStatus(str, Enum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """A condition in the metav1.Condition shape."""

    type: str = Field(max_length=316, description="Type of condition in CamelCase.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="", max_length=1024, description="Machine-readable CamelCase reason for the last transition."
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details of the last transition.")
    last_transition_time: datetime | None = Field(default=None, description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was computed from."
    )


CONDITIONS_SCHEMA_EXTRA: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def conditions_field(description: str) -> Any:
    """The `conditions` field of a status (a list map keyed by type), described with the kind's condition types."""
    return Field(default=[], json_schema_extra=CONDITIONS_SCHEMA_EXTRA, description=description)


# The fields KindStatus declares after its first two; the CRDs list them after the kind's own fields.
_STATUS_TAIL = ("message", "observedGeneration")


def _status_schema(schema: dict[str, Any], cls: type[KubeModel]) -> None:
    _add_model_rules(schema, cls)
    properties = schema.get("properties", {})
    for name in _STATUS_TAIL:
        if name in properties:
            properties[name] = properties.pop(name)


PhaseT = TypeVar("PhaseT", bound=Enum)


class KindStatus(StatusModel, Generic[PhaseT]):
    """What the status of every kind holds: its phase, its conditions, a message and the generation it reflects.

    A kind derives `KindStatus[ItsPhase]`; the phase's description in the CRD is the phase enum's docstring
    (which lists the phases), and the kind overrides `conditions` with `conditions_field` to name its condition
    types. In the CRD the kind's own fields sit between conditions and message, so that the summary and the
    generation close the status as they always have (pydantic would list inherited fields first).
    """

    model_config = ConfigDict(json_schema_extra=_status_schema)

    phase: PhaseT | None = None
    conditions: list[Condition] = conditions_field("Conditions in the metav1.Condition shape.")
    message: str | None = Field(default=None, description="Human-readable summary of the current state or the error.")
    observed_generation: int | None = Field(default=None, description="The .metadata.generation this status reflects.")


# ---------------------------------------------------------------------------------------------- resource kinds


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str  # string, integer, number, boolean, date
    description: str
    priority: int = 0

    def to_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            out["priority"] = self.priority
        return out


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date", "Time since creation.")


@dataclass(frozen=True)
class ResourceKind:
    """Everything the CRD and the operator's watches need to know about one kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec_model: type[KubeModel]
    status_model: type[KindStatus]
    description: str
    printer_columns: tuple[PrinterColumn, ...] = ()
    categories: tuple[str, ...] = field(default=CATEGORIES)
    group: str = GROUP
    version: str = VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"
