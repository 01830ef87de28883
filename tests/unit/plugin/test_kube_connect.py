"""The connection follows kubectl's rules: --kubeconfig, --context, and the namespace from -n or the context."""

from __future__ import annotations

import pytest
import yaml

from boltz_kubectl.errors import PluginError
from boltz_kubectl.kube import Kube


def kubeconfig(tmp_path):
    cluster = {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}
    body = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
                     {"name": "other", "context": {"cluster": "c", "user": "u"}}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_namespace_from_flag_then_context_then_default(tmp_path):
    path = kubeconfig(tmp_path)
    assert Kube.connect(path, None, None).namespace == "team-a"
    assert Kube.connect(path, None, "mine").namespace == "mine"
    assert Kube.connect(path, "other", None).namespace == "default"


def test_a_missing_kubeconfig_or_context_is_an_error(tmp_path):
    with pytest.raises(PluginError, match="cannot load the kubeconfig"):
        Kube.connect(str(tmp_path / "none"), None, None)
    with pytest.raises(PluginError, match="cannot load the kubeconfig"):
        Kube.connect(kubeconfig(tmp_path), "nope", None)
