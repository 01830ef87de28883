"""Turn a spec into what the worker runs: the Boltz (or BoltzGen) YAML, its files, and the run options."""

from .boltz_yaml import (
    DEFAULT_DOWNLOADS_DIR,
    DEFAULT_INPUTS_DIR,
    InputFileRef,
    msa_file_name,
    render_boltz_input,
    template_file_name,
)
from .boltzgen_yaml import render_design_spec, structure_file_name
from .options import predict_options, server_msa_chains
from .validate import validate_prediction

__all__ = [
    "DEFAULT_DOWNLOADS_DIR",
    "DEFAULT_INPUTS_DIR",
    "InputFileRef",
    "msa_file_name",
    "predict_options",
    "render_boltz_input",
    "render_design_spec",
    "server_msa_chains",
    "structure_file_name",
    "template_file_name",
    "validate_prediction",
]
