"""Rendering the chart with the pinned helm (the one `make binaries` builds), for the chart's unit tests.

Also the configuration reference for the README, generated from values.schema.json:
    .venv/bin/python tests/unit/chart/chart_helpers.py reference
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "boltz-operator"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULT_VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


class HelmError(AssertionError):
    pass


def helm_binary() -> Path | None:
    cache = Path(os.environ.get("BOLTZ_CACHE_HOME", Path.home() / ".cache" / "boltz-operator"))
    helm = cache / "bin" / "current" / "helm"
    return helm if helm.is_file() else None


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    binary = helm_binary()
    if binary is None:
        import pytest

        pytest.skip("helm is not built yet: `make binaries` builds the pinned helm")
    # No kubeconfig: rendering must never need a cluster.
    env = {
        **os.environ,
        "KUBECONFIG": os.devnull,
        "HELM_CACHE_HOME": tempfile.gettempdir() + "/helm-cache",
        "HELM_CONFIG_HOME": tempfile.gettempdir() + "/helm-config",
        "HELM_DATA_HOME": tempfile.gettempdir() + "/helm-data",
    }
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60, env=env)
    if check and result.returncode != 0:
        raise HelmError(f"helm {' '.join(args[:2])} failed ({result.returncode}):\n{result.stderr}")
    return result


def _values_args(values: dict | None, workdir: Path) -> list[str]:
    if not values:
        return []
    path = workdir / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["-f", str(path)]


def render(
    values: dict | None = None, *, namespace: str = "boltz-system", release: str = "boltz-operator", chart: Path = CHART
) -> list[dict]:
    """The manifests `helm template` renders (CRDs excluded), parsed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = helm("template", release, str(chart), "--namespace", namespace, *_values_args(values, Path(tmp))).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render_error(values: dict) -> str:
    """The error `helm template` gives for these values (it must fail)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = helm("template", "boltz-operator", str(CHART), *_values_args(values, Path(tmp)), check=False)
    assert result.returncode != 0, f"helm template accepted {values}"
    return result.stderr


def render_notes(values: dict | None = None, namespace: str = "boltz-system") -> str:
    """NOTES.txt as `helm install` prints it (helm template skips NOTES: render a copy of it as a ConfigMap)."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "chart"
        shutil.copytree(CHART, chart)
        notes = (chart / "templates" / "NOTES.txt").read_text()
        (chart / "templates" / "NOTES.txt").unlink()
        (chart / "templates" / "_notes.tpl").write_text('{{- define "notes" -}}\n' + notes + "{{- end -}}\n")
        (chart / "templates" / "notes.yaml").write_text(
            'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: {{ include "notes" . | quote }}\n'
        )
        out = helm(
            "template",
            "boltz-operator",
            str(chart),
            "--namespace",
            namespace,
            "--show-only",
            "templates/notes.yaml",
            *_values_args(values, Path(tmp)),
        ).stdout
    return yaml.safe_load(out)["data"]["notes"]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def container_env(docs: list[dict]) -> dict[str, str]:
    [container] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


# ------------------------------------------------------------------------------------------ reference


def schema_leaves(schema: dict = SCHEMA, prefix: str = "") -> list[tuple[str, dict]]:
    """(dotted key, schema) for every documented value: objects with fixed properties are walked into."""
    leaves = []
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        if sub.get("type") == "object" and "properties" in sub:
            leaves.extend(schema_leaves(sub, path + "."))
        else:
            leaves.append((path, sub))
    return leaves


def default_of(path: str):
    value = DEFAULT_VALUES
    for part in path.split("."):
        value = value[part]
    return value


def reference_markdown() -> str:
    lines = ["| value | default | description |", "|---|---|---|"]
    for path, sub in schema_leaves():
        default = json.dumps(default_of(path), separators=(", ", ": "))
        description = sub["description"].replace("|", r"\|")
        lines.append(f"| `{path}` | `{default}` | {description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] != ["reference"]:
        sys.exit(f"usage: {sys.argv[0]} reference")
    print(reference_markdown())
