"""Converters: a user's own files (boltz YAML or FASTA, boltzgen design specs) -> the CRDs' spec shape."""

from .files import CONFIGMAP_FILE_LIMIT, CONFIGMAP_TOTAL_LIMIT, MAX_FILE_BYTES, LocalFile

__all__ = ["CONFIGMAP_FILE_LIMIT", "CONFIGMAP_TOTAL_LIMIT", "MAX_FILE_BYTES", "LocalFile"]
