#!/usr/bin/env bash
# The real boltzgen, in a virtualenv of its own, for the BoltzGen fidelity tests (tests/integration/fidelity).
#
# boltzgen 0.3.2 pins numpy==2.0.2; boltz 2.2.1 needs numpy<2 and kopf needs click>=8.2: three environments.
# The venv is built once, outside the repository, and reused:
#     ${BOLTZ_CACHE_HOME:-$HOME/.cache/boltz-operator}/boltzgen-venv-0.3.2
# Every version is pinned by hack/boltzgen-venv.constraints.txt: the resolution pip computes for boltzgen==0.3.2
# under the worker-boltzgen image's own pins (worker/constraints-boltzgen.txt), with the torch stack held at the
# boltz venv's versions instead of the image's: the parser runs on the very gemmi, rdkit, numpy and biotite that
# production has (regenerate it with `hack/boltzgen-venv.sh --refreeze`).
#
# torch is NOT downloaded a second time. The packages of the torch stack (torch, triton, the nvidia-* CUDA
# libraries, cuda-*; about 5 GB) are taken from the boltz venv (hack/boltz-venv.sh, built first if missing):
# symlinked into <venv>/torch-from-boltz, a folder that a .pth file appends to the END of sys.path, so that every
# other package, numpy 2.0.2 first of all, resolves from this venv. The constraints must name for those packages
# the very versions the boltz venv holds; the build checks that, and that torch imports and works with numpy 2.
# cuequivariance-* (and the CUDA 12 libraries that only they need) are not installed at all: they are the GPU
# kernels of boltzgen's model layers, never imported by its parser, its `check` command or its data pipeline.
#
# The last line on stdout is the venv's python. Progress goes to stderr. Exit status is non-zero, with the failed
# step named, when anything fails (typically: no network to the package index on a cold cache).
#
# Environment: BOLTZ_CACHE_HOME (cache root), BOLTZ_VENV_PYTHON (interpreter to build from, default python3.11).
set -euo pipefail

BOLTZGEN_VERSION=0.3.2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONSTRAINTS="$HERE/boltzgen-venv.constraints.txt"
IMAGE_CONSTRAINTS="$HERE/../worker/constraints-boltzgen.txt"  # the worker-boltzgen image's pins
CACHE_HOME="${BOLTZ_CACHE_HOME:-$HOME/.cache/boltz-operator}"
VENV="$CACHE_HOME/boltzgen-venv-$BOLTZGEN_VERSION"
BASE_PYTHON="${BOLTZ_VENV_PYTHON:-python3.11}"
MARKER="$VENV/.installed"
TORCH_LINKS="$VENV/torch-from-boltz"
# Distributions taken from the boltz venv (linked) and never installed here (skipped), as regular expressions on
# the normalised name.
LINKED='^(torch|triton|nvidia-.*-cu13|nvidia-(cublas|cuda-cccl|cuda-cupti|cuda-nvrtc|cuda-runtime|cufft|cufile|cusolver|cusparse|nvjitlink|nvtx)|cuda-(bindings|pathfinder|toolkit))$'
SKIPPED='^(cuequivariance.*|nvidia-.*-cu12)$'

REFREEZE=0
case "${1:-}" in
  --refreeze) REFREEZE=1 ;;
  "") ;;
  *) echo "usage: $0 [--refreeze]" >&2; exit 2 ;;
esac

STEP="start"
step() { STEP="$1"; echo "boltzgen-venv: $STEP" >&2; }
trap 'rc=$?; echo "boltzgen-venv: FAILED at step \"$STEP\" (exit $rc); venv: $VENV" >&2; exit $rc' ERR

step "check the base interpreter ($BASE_PYTHON is Python 3.11)"
"$BASE_PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' >&2

step "the boltz venv, whose torch this venv borrows (hack/boltz-venv.sh)"
BOLTZ_PYTHON="$("$HERE/boltz-venv.sh" | tail -n 1)"
BOLTZ_VENV="$(dirname "$(dirname "$BOLTZ_PYTHON")")"
BOLTZ_SITE="$("$BOLTZ_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# What the venv was built from: when this changes, the venv is rebuilt.
fingerprint() {
  {
    echo "boltzgen==$BOLTZGEN_VERSION linked=$LINKED skipped=$SKIPPED"
    "$BASE_PYTHON" -c 'import sys; print(sys.version.split()[0])'  # a venv belongs to its interpreter
    echo "boltz venv $BOLTZ_VENV $(cat "$BOLTZ_VENV/.installed")"  # the torch it links to
    if [[ $REFREEZE == 0 && -f $CONSTRAINTS ]]; then grep -v '^#' "$CONSTRAINTS"; fi  # pins, not comments
  } | sha256sum | cut -d' ' -f1
}

mkdir -p "$CACHE_HOME"
step "take the build lock $CACHE_HOME/boltzgen-venv.lock"
exec 9>"$CACHE_HOME/boltzgen-venv.lock"
flock 9

WANT="$(fingerprint)"
if [[ $REFREEZE == 0 && -f $MARKER && "$(cat "$MARKER")" == "$WANT" ]]; then
  echo "boltzgen-venv: up to date" >&2
  echo "$VENV/bin/python"
  exit 0
fi

started=$(date +%s)
step "create the venv $VENV"
rm -rf "$VENV"
"$BASE_PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check --no-input)
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

if [[ $REFREEZE == 1 || ! -f $CONSTRAINTS ]]; then
  step "resolve boltzgen==$BOLTZGEN_VERSION under the image's pins, torch held at the boltz venv's (pip --dry-run)"
  TORCH_VERSION="$("$BOLTZ_PYTHON" -c 'import importlib.metadata as md; print(md.version("torch"))')"
  PIP_VERSION="$("$BOLTZ_PYTHON" -m pip --version | cut -d' ' -f2)"
  "${PIP[@]}" install -q "pip==$PIP_VERSION" >&2
  report="$(mktemp)"
  image_pins="$(mktemp)"
  # the image's pins, less its torch stack (CUDA 12 builds there; the boltz venv's here) and what depends on it
  grep -v -i -E '^(torch|triton|nvidia-|cuda-|cuequivariance)' "$IMAGE_CONSTRAINTS" >"$image_pins"
  "${PIP[@]}" install -q --dry-run --ignore-installed --report "$report" -c "$image_pins" \
    "boltzgen==$BOLTZGEN_VERSION" "torch==$TORCH_VERSION" >&2
  rm -f "$image_pins"
  {
    echo "# Every version in the boltzgen fidelity venv (hack/boltzgen-venv.sh), linked and skipped ones included."
    echo "# Regenerate with hack/boltzgen-venv.sh --refreeze (pip's resolution of boltzgen under the worker-boltzgen"
    echo "# image's pins, worker/constraints-boltzgen.txt, with torch held at the boltz venv's version)."
    echo "pip==$PIP_VERSION"
    "$PY" - "$report" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
pins = {i["metadata"]["name"]: i["metadata"]["version"] for i in report["install"]}
for name in sorted(pins, key=str.lower):
    print(f"{name}=={pins[name]}")
EOF
  } >"$CONSTRAINTS.tmp"
  rm -f "$report"
  mv "$CONSTRAINTS.tmp" "$CONSTRAINTS"
  REFREEZE=0
  WANT="$(fingerprint)"
fi

step "upgrade pip to the pinned version"
"${PIP[@]}" install -q -c "$CONSTRAINTS" pip >&2

step "link the torch stack from the boltz venv into $TORCH_LINKS (checked against the pins)"
"$PY" - "$CONSTRAINTS" "$BOLTZ_SITE" "$TORCH_LINKS" "$SITE" "$LINKED" >&2 <<'EOF'
import importlib.metadata as md
import os
import re
import sys
from pathlib import Path

constraints, boltz_site, links, site, linked = sys.argv[1:]
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
pins = {}
for line in Path(constraints).read_text().splitlines():
    if line and not line.startswith("#"):
        name, version = line.split("==")
        pins[norm(name)] = version
wanted = {name: version for name, version in pins.items() if re.match(linked, name)}
found = {norm(d.metadata["Name"]): d for d in md.distributions(path=[boltz_site])}
links = Path(links)
links.mkdir()
tops = set()
for name, version in sorted(wanted.items()):
    dist = found.get(name)
    if dist is None or dist.version != version:
        have = dist.version if dist else "nothing"
        sys.exit(f"{name}=={version} is pinned, the boltz venv has {have}: run hack/boltzgen-venv.sh --refreeze")
    for file in dist.files or []:
        parts = Path(file).parts
        if parts and parts[0] != "..":  # console scripts live in bin/, outside site-packages
            tops.add(parts[0])
for top in sorted(tops):
    os.symlink(Path(boltz_site) / top, links / top)
# A .pth line is appended to sys.path after site-packages: this venv's own packages (numpy 2.0.2) come first.
(Path(site) / "zz-torch-from-boltz.pth").write_text(f"{links}\n")
print(f"linked {len(wanted)} distributions ({len(tops)} entries) from {boltz_site}")
EOF

step "install boltzgen==$BOLTZGEN_VERSION and its pinned dependencies, less the linked and skipped ones"
requirements="$VENV/requirements.txt"
"$PY" - "$CONSTRAINTS" "$LINKED" "$SKIPPED" >"$requirements" <<'EOF'
import re, sys
constraints, linked, skipped = sys.argv[1:]
for line in open(constraints).read().splitlines():
    if not line or line.startswith("#"):
        continue
    name = re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
    if name != "pip" and not re.match(linked, name) and not re.match(skipped, name):
        print(line)
EOF
"${PIP[@]}" install -q --no-deps -r "$requirements" >&2

step "check the installed set is consistent (pip check; only the skipped cuequivariance-* may be missing)"
problems="$("${PIP[@]}" check 2>&1 || true)"
unexpected="$(grep -v -E '^No broken requirements|^boltzgen [0-9.]+ requires cuequivariance' <<<"$problems" || true)"
if [[ -n $unexpected ]]; then
  echo "$problems" >&2
  false
fi

step "import torch (borrowed) with numpy 2.0.2, and boltzgen's parser and check command"
"$PY" - >&2 <<'EOF'
import importlib.metadata as md
import numpy
import torch
assert numpy.__version__ == "2.0.2", numpy.__version__
assert "torch-from-boltz" in torch.__file__, torch.__file__
assert "torch-from-boltz" not in numpy.__file__, numpy.__file__
assert torch.from_numpy(numpy.arange(3.0)).sum().item() == 3.0  # torch's numpy bridge works against numpy 2
import boltzgen.cli.boltzgen  # noqa: F401  `boltzgen check` (check_design_spec)
import boltzgen.data.parse.schema  # noqa: F401  YamlDesignParser
import boltzgen.task.predict.data_from_yaml  # noqa: F401  the design step's data module
print(f"boltzgen {md.version('boltzgen')}, torch {torch.__version__} (from the boltz venv), numpy {numpy.__version__}, "
      f"rdkit {md.version('rdkit')}, gemmi {md.version('gemmi')}, biotite {md.version('biotite')}")
EOF

echo "$WANT" >"$MARKER"
echo "boltzgen-venv: built in $(($(date +%s) - started)) s, $(du -sh "$VENV" | cut -f1) (torch linked, not copied)" >&2
echo "$VENV/bin/python"
