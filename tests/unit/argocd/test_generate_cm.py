"""The shipped argocd-cm snippet and Helm values are exactly what argocd/generate_cm.py makes of the .lua files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
ARGOCD = REPO / "argocd"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"boltz_argocd_{name}", ARGOCD / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate_cm = _load("generate_cm")

SCRIPTS = {
    f"resource.customizations.health.{p.parent.parent.name}_{p.parent.name}": p.read_text()
    for p in sorted((ARGOCD / "health").glob("*/*/health.lua"))
}


def test_one_script_per_kind_in_argo_cds_resource_customizations_layout():
    assert sorted(SCRIPTS) == [
        "resource.customizations.health.boltz-operator.io_BoltzGenCampaign",
        "resource.customizations.health.boltz-operator.io_BoltzModelCache",
        "resource.customizations.health.boltz-operator.io_BoltzPrediction",
        "resource.customizations.health.boltz-operator.io_BoltzScreen",
    ]


@pytest.mark.parametrize("path", sorted(generate_cm.OUTPUTS), ids=lambda p: p.name)
def test_the_checked_in_file_is_the_generated_one(path: Path):
    assert path.read_text() == generate_cm.OUTPUTS[path](), (
        f"{path.name} is out of date with argocd/health/: run `python argocd/generate_cm.py`"
    )


def test_the_configmap_carries_each_script_byte_for_byte():
    cm = yaml.safe_load(generate_cm.CM_FILE.read_text())
    assert (cm["apiVersion"], cm["kind"], cm["metadata"]["name"]) == ("v1", "ConfigMap", "argocd-cm")
    assert "namespace" not in cm["metadata"], "a namespace would stop `kubectl patch -n <argocd namespace>` elsewhere"
    assert cm["data"] == SCRIPTS


def test_the_helm_values_carry_the_same_keys_under_configs_cm():
    values = yaml.safe_load(generate_cm.VALUES_FILE.read_text())
    assert values == {"configs": {"cm": SCRIPTS}}


def test_check_mode_passes_on_the_checked_in_files(capsys):
    assert generate_cm.main(["--check"]) == 0


def test_argo_cd_can_parse_the_keys():
    # util/settings: resource.customizations.<type>.<group_kind>, split into 4 parts on ".", then group_kind on "_".
    for key in SCRIPTS:
        prefix, customization, kind_type, group_kind = key.split(".", 3)
        assert (prefix, customization, kind_type) == ("resource", "customizations", "health")
        group, kind = group_kind.split("_")
        assert group == "boltz-operator.io" and kind.startswith("Boltz")
