"""CRD generation from the pydantic models in boltz_operator.api (`python -m boltz_operator.crdgen [--check]`)."""

from .crd import build_crd, model_schema, openapi_schema
from .files import crd_file_name, render_crds, write_or_check
from .schema import SchemaError, structural_schema, walk

__all__ = [
    "SchemaError",
    "build_crd",
    "crd_file_name",
    "model_schema",
    "openapi_schema",
    "render_crds",
    "structural_schema",
    "walk",
    "write_or_check",
]
