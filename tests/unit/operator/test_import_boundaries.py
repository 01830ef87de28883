"""The operator needs the shared contract only: importing it pulls in neither the worker's code nor boto3 (the
operator image installs neither; see Dockerfile.operator)."""

from __future__ import annotations

import json
import subprocess
import sys


def modules_loaded_by(statement: str) -> set[str]:
    """Top-level modules in sys.modules after `statement`, in a fresh interpreter (this one has loaded others)."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_the_operator_imports_neither_the_worker_nor_boto3():
    loaded = modules_loaded_by("import boltz_operator.handlers, boltz_operator.cli")
    assert "boltz_contract" in loaded  # the check sees the operator's imports at all
    assert not loaded & {"boltz_worker", "boto3", "botocore", "s3transfer"}, loaded & {"boltz_worker", "boto3"}


def test_the_contract_is_light():
    loaded = modules_loaded_by("import boltz_contract, boltz_contract.boltz_input")
    assert not loaded & {"boltz_worker", "boltz_operator", "boto3", "kubernetes", "kopf", "yaml"}
