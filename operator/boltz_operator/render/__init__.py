"""Turn a BoltzPrediction spec into what the worker runs: the Boltz YAML, its files, and the predict options."""

from .boltz_yaml import (
    DEFAULT_DOWNLOADS_DIR,
    DEFAULT_INPUTS_DIR,
    InputFileRef,
    msa_file_name,
    render_boltz_input,
    template_file_name,
)
from .options import predict_options, server_msa_chains
from .validate import validate_prediction

__all__ = [
    "DEFAULT_DOWNLOADS_DIR",
    "DEFAULT_INPUTS_DIR",
    "InputFileRef",
    "msa_file_name",
    "predict_options",
    "render_boltz_input",
    "server_msa_chains",
    "template_file_name",
    "validate_prediction",
]
