"""The install command of argocd/README.md, run for real: `kubectl patch --type merge --patch-file` adds the health
keys to an existing argocd-cm and keeps every other key."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]


def test_the_snippet_patches_into_an_existing_argocd_cm(cluster, namespace):
    cluster.kubectl(
        "create",
        "configmap",
        "argocd-cm",
        "-n",
        namespace,
        "--from-literal=url=https://argocd.example",
        "--from-literal=timeout.reconciliation=180s",
    )

    cluster.kubectl(
        "patch",
        "configmap",
        "argocd-cm",
        "-n",
        namespace,
        "--type",
        "merge",
        "--patch-file",
        str(REPO / "argocd" / "argocd-cm-health.yaml"),
    )

    cm = cluster.kubectl_json("get", "configmap", "argocd-cm", "-n", namespace)
    scripts = {
        f"resource.customizations.health.{p.parent.parent.name}_{p.parent.name}": p.read_text()
        for p in (REPO / "argocd" / "health").glob("*/*/health.lua")
    }
    assert cm["data"] == {"url": "https://argocd.example", "timeout.reconciliation": "180s", **scripts}
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
