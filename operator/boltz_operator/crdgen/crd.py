"""Build a CustomResourceDefinition (apiextensions.k8s.io/v1) from an api.ResourceKind."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..api.common import ResourceKind
from .schema import structural_schema

# Children are named <name>-<role>[-<generation>] and labelled with the owner's name: 52 characters leave room
# within the 63 that labels (and a Job's pod labels) allow.
MAX_NAME_LENGTH = 52
NAME_LENGTH_RULE = {
    "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
    "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters (it names the Jobs and labels the pods)",
}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return structural_schema(model.model_json_schema(by_alias=True, mode="validation"))


def openapi_schema(resource: ResourceKind) -> dict[str, Any]:
    spec = model_schema(resource.spec_model)
    status = model_schema(resource.status_model)
    return {
        "description": resource.description,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {"description": "Kind is a string value representing the REST resource.", "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
        "x-kubernetes-validations": [NAME_LENGTH_RULE],
    }


def build_crd(resource: ResourceKind) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": resource.kind,
        "listKind": f"{resource.kind}List",
        "plural": resource.plural,
        "singular": resource.singular,
        "shortNames": list(resource.short_names),
        "categories": list(resource.categories),
    }
    version = {
        "name": resource.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(resource)},
        "subresources": {"status": {}},
        "additionalPrinterColumns": [c.to_schema() for c in resource.printer_columns],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "labels": {"app.kubernetes.io/name": "boltz-operator", "app.kubernetes.io/part-of": "boltz-operator"},
        },
        "spec": {"group": resource.group, "names": names, "scope": "Namespaced", "versions": [version]},
    }
