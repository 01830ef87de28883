"""Converted inputs -> the objects to create: the inputs ConfigMap and the BoltzPrediction, BoltzGenCampaign or
BoltzScreen.

Files are placed here: each goes into the ConfigMap `<name>-inputs` while it is small (CONFIGMAP_FILE_LIMIT each,
CONFIGMAP_TOTAL_LIMIT in all), else to the results store under `<results>/<namespace>/<name>/inputs/<key>`
(the store the worker reads with the credentials it writes results with). The result is checked by the operator's
own models and renderer checks, so what is submitted is what the apiserver and the operator accept.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from boltz_operator.api import API_VERSION, BoltzGenCampaign, BoltzPrediction
from boltz_operator.api.screen import BoltzScreen
from boltz_operator.builders.screen import target_spec
from boltz_operator.render import validate_prediction

from .errors import PluginError, validation_problems
from .inputs.boltz import Converted
from .inputs.files import CONFIGMAP_FILE_LIMIT, CONFIGMAP_TOTAL_LIMIT, LocalFile
from .inputs.screen import Library

MANAGED_BY = {"app.kubernetes.io/managed-by": "kubectl-boltz"}
INPUT_OF_LABEL = "boltz-operator.io/inputs-of"
# Job names (<name>-predict, <name>-design, <name>-filter) become label values, at most 63 characters.
MAX_NAME_LENGTH = 52
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ResultsOptions:
    """--results and its companions: the S3 store for results (and for inputs too large for the ConfigMap)."""

    uri: str
    endpoint: str | None = None
    region: str | None = None
    credentials_secret: str | None = None

    def body(self) -> dict[str, Any]:
        s3: dict[str, Any] = {"uri": self.uri.rstrip("/")}
        if self.endpoint:
            s3["endpoint"] = self.endpoint
        if self.region:
            s3["region"] = self.region
        if self.credentials_secret:
            s3["credentialsSecretRef"] = {"name": self.credentials_secret}
        return {"s3": s3}


@dataclass(frozen=True)
class Upload:
    file: LocalFile
    uri: str


@dataclass
class Submission:
    """What `predict`/`design` creates for one input, in creation order: configmap (if any files), then resource."""

    name: str
    namespace: str
    resource: dict[str, Any]
    configmap: dict[str, Any] | None = None
    uploads: list[Upload] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.resource["kind"]

    def objects(self) -> list[dict[str, Any]]:
        return [o for o in (self.configmap, self.resource) if o is not None]


def default_name(path: Path) -> str:
    """A resource name from an input's file name: `prot_custom_msa.yaml` -> `prot-custom-msa`."""
    name = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return name[:MAX_NAME_LENGTH].rstrip("-")


def check_name(name: str) -> str:
    if not NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise PluginError(
            f"invalid name {name!r}: lower-case letters, digits and '-', starting and ending with a letter or "
            f"digit, at most {MAX_NAME_LENGTH} characters (the Jobs' names must fit a label); give one with --name"
        )
    return name


def inputs_configmap_name(name: str) -> str:
    return f"{name}-inputs"


def build_prediction(
    converted: Converted,
    name: str,
    namespace: str,
    model_cache: str | None = None,
    results: ResultsOptions | None = None,
    options: dict[str, Any] | None = None,
) -> Submission:
    """A BoltzPrediction (and its inputs ConfigMap) for a converted boltz input. Raises PluginError when the
    operator's model or checks refuse it, or a file is too large for the ConfigMap and there is no --results."""
    spec = dict(converted.spec)
    _common_spec(spec, model_cache, results)
    if options:
        spec["options"] = options
    submission = _submission(converted, "BoltzPrediction", name, namespace, spec, results)
    try:
        model = BoltzPrediction.model_validate(submission.resource)
    except ValidationError as e:
        # named after its file even for a flag's field: `predict DIR` lists the refusals of several files
        raise PluginError(f"{converted.source}: the BoltzPrediction would be refused", _problems(e, False)) from e
    problems = validate_prediction(model.spec)
    if problems:
        raise PluginError(f"{converted.source}: the operator would refuse this prediction", problems)
    return submission


def build_campaign(
    converted: Converted,
    name: str,
    namespace: str,
    settings: dict[str, Any],
    model_cache: str | None = None,
    results: ResultsOptions | None = None,
) -> Submission:
    """A BoltzGenCampaign for a converted design spec; `settings` are the campaign's own fields (numDesigns,
    budget, protocol, shards...). Raises PluginError as build_prediction does."""
    spec = {"designSpec": converted.spec, **settings}
    _common_spec(spec, model_cache, results)
    submission = _submission(converted, "BoltzGenCampaign", name, namespace, spec, results)
    try:
        BoltzGenCampaign.model_validate(submission.resource)
    except ValidationError as e:
        problems = _problems(e, True)  # the design spec's own paths have no `spec.` (flags' fields have)
        raise _refused(converted.source, "BoltzGenCampaign", problems, lambda p: not p.startswith("spec.")) from e
    return submission


def build_screen(
    target: Converted,
    library: Library,
    name: str,
    namespace: str,
    settings: dict[str, Any],
    model_cache: str | None = None,
    results: ResultsOptions | None = None,
) -> Submission:
    """A BoltzScreen for a converted target (inputs.screen.convert_screen_target) and a library file; `settings` are
    the screen's own fields (ligandChain, affinity, ligandsPerShard, parallelism, topK, library's idColumn...).

    The library goes into the ConfigMap `<name>-inputs` with the target's files while they fit in it together
    (CONFIGMAP_TOTAL_LIMIT), else it is uploaded to `<results>/<namespace>/<name>/inputs/` like any large input.
    Raises PluginError when it fits nowhere (no --results), or the operator's model refuses the screen."""
    settings = dict(settings)
    library_spec: dict[str, Any] = {"format": library.format.value, **settings.pop("library", {})}
    library.file.slots.append(library_spec)
    spec: dict[str, Any] = {"target": target.spec, "library": library_spec, **settings}
    _common_spec(spec, model_cache, results)
    files = [*target.files, library.file]
    if results is None and library.file in _split(files)[1]:
        raise PluginError(
            f"{library.file.path}: the library ({library.file.size} bytes) does not fit in a ConfigMap (with the "
            f"target's files, at most {CONFIGMAP_TOTAL_LIMIT // 1024} KiB): give --results s3://BUCKET/PREFIX to "
            "upload it to the results store with your S3 credentials, or upload it yourself and set "
            "spec.library.s3.uri (--dry-run=client -o yaml prints the manifest to edit)"
        )
    combined = Converted(source=target.source, spec=target.spec, files=files)
    submission = _submission(combined, "BoltzScreen", name, namespace, spec, results)
    try:
        model = BoltzScreen.model_validate(submission.resource)
    except ValidationError as e:
        problems = _problems(e, False)
        raise _refused(target.source, "BoltzScreen", problems, lambda p: p.startswith("spec.target")) from e
    problems = validate_prediction(target_spec(model.spec))  # the operator's own check of the target
    if problems:
        raise PluginError(f"{target.source}: the operator would refuse this screen's target", problems)
    return submission


def _refused(source: Path, kind: str, problems: list[str], from_file: Callable[[str], bool]) -> PluginError:
    """The model's refusal, blaming the input file only when a problem is in what the file gave (not in a field
    that a flag such as --top-k set)."""
    where = f"{source}: " if any(from_file(p) for p in problems) else ""
    return PluginError(f"{where}the {kind} would be refused", problems)


def _problems(error: ValidationError, design: bool) -> list[str]:
    """Pydantic's errors as field paths: a design spec's under boltzgen's own keys (`entities[0].file...`),
    everything else under the resource's `spec.`."""
    out = []
    for line in validation_problems(error, "", snake_case=design):
        line = line.removeprefix("spec.")
        out.append(line.removeprefix("design_spec.") if design and line.startswith("design_spec.") else f"spec.{line}")
    return out


def _common_spec(spec: dict[str, Any], model_cache: str | None, results: ResultsOptions | None) -> None:
    if model_cache:
        spec["modelCache"] = model_cache
    if results:
        spec["results"] = results.body()


def _submission(
    converted: Converted, kind: str, name: str, namespace: str, spec: dict[str, Any], results: ResultsOptions | None
) -> Submission:
    resource = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "namespace": namespace}}
    submission = Submission(name=name, namespace=namespace, resource={**resource, "spec": spec})
    if not converted.files:
        return submission
    cm_name = inputs_configmap_name(name)
    prefix = f"{results.uri.rstrip('/')}/{namespace}/{name}/inputs" if results else None
    in_configmap, to_upload = _split(converted.files)
    if to_upload and prefix is None:
        raise PluginError(
            f"{converted.source}: some files are too large for a ConfigMap (over {CONFIGMAP_FILE_LIMIT // 1024} KiB "
            f"each or {CONFIGMAP_TOTAL_LIMIT // 1024} KiB in all); give --results s3://BUCKET/PREFIX to upload them "
            "to the results store",
            [f"{f.path} ({f.size} bytes), named at {', '.join(f.fields)}" for f in to_upload],
        )
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for f in in_configmap:
        content = f.path.read_bytes()
        try:
            data[f.key] = content.decode()
        except UnicodeDecodeError:
            binary[f.key] = base64.b64encode(content).decode()
        for slot in f.slots:
            slot["configMapKeyRef"] = {"name": cm_name, "key": f.key}
    for f in to_upload:
        upload = Upload(file=f, uri=f"{prefix}/{f.key}")
        submission.uploads.append(upload)
        for slot in f.slots:
            slot["s3"] = {"uri": upload.uri}
    if in_configmap:
        configmap: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": cm_name,
                "namespace": namespace,
                "labels": {**MANAGED_BY, INPUT_OF_LABEL: name},
            },
            "immutable": True,  # as the resource's inputs: a run must read what was submitted
        }
        if data:
            configmap["data"] = data
        if binary:
            configmap["binaryData"] = binary
        submission.configmap = configmap
    return submission


def _split(files: list[LocalFile]) -> tuple[list[LocalFile], list[LocalFile]]:
    """(files for the ConfigMap, files to upload): small files first, while the total allows."""
    small, large, total = [], [], 0
    for f in sorted(files, key=lambda f: (f.size, f.key)):
        if f.size <= (f.configmap_limit or CONFIGMAP_FILE_LIMIT) and total + f.size <= CONFIGMAP_TOTAL_LIMIT:
            small.append(f)
            total += f.size
        else:
            large.append(f)
    return small, large
