#!/usr/bin/env bash
# The real boltz, in a virtualenv of its own, for the fidelity tests (tests/integration/fidelity).
#
# boltz 2.2.1 pins click==8.1.7 and numpy<2, which kopf cannot live with, so it never shares the project's .venv.
# The venv is built once, outside the repository, and reused:
#     ${BOLTZ_CACHE_HOME:-$HOME/.cache/boltz-operator}/boltz-venv-2.2.1
# Every version is pinned by hack/boltz-venv.constraints.txt (a `pip freeze` of a good install; regenerate it with
# `hack/boltz-venv.sh --refreeze`). torch comes from PyPI: on linux x86_64 that is the CUDA build (several GB,
# cached here once); it runs on CPU as well.
#
# The last line on stdout is the venv's python. Progress goes to stderr. Exit status is non-zero, with the failed
# step named, when anything fails (typically: no network to the package index on a cold cache).
#
# Environment: BOLTZ_CACHE_HOME (cache root), BOLTZ_VENV_PYTHON (interpreter to build from, default python3.11).
set -euo pipefail

BOLTZ_VERSION=2.2.1
BIOTITE_VERSION=1.6.0  # ships the Chemical Component Dictionary as biotite/structure/info/components.bcif
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONSTRAINTS="$HERE/boltz-venv.constraints.txt"
CACHE_HOME="${BOLTZ_CACHE_HOME:-$HOME/.cache/boltz-operator}"
VENV="$CACHE_HOME/boltz-venv-$BOLTZ_VERSION"
BASE_PYTHON="${BOLTZ_VENV_PYTHON:-python3.11}"
MARKER="$VENV/.installed"

REFREEZE=0
case "${1:-}" in
  --refreeze) REFREEZE=1 ;;
  "") ;;
  *) echo "usage: $0 [--refreeze]" >&2; exit 2 ;;
esac

STEP="start"
step() { STEP="$1"; echo "boltz-venv: $STEP" >&2; }
trap 'rc=$?; echo "boltz-venv: FAILED at step \"$STEP\" (exit $rc); venv: $VENV" >&2; exit $rc' ERR

# What the venv was built from: when this changes, the venv is rebuilt.
fingerprint() {
  {
    echo "boltz==$BOLTZ_VERSION biotite==$BIOTITE_VERSION"
    "$BASE_PYTHON" -c 'import sys; print(sys.version.split()[0])'  # a venv belongs to its interpreter
    if [[ $REFREEZE == 0 && -f $CONSTRAINTS ]]; then grep -v '^#' "$CONSTRAINTS"; fi  # pins, not comments
  } | sha256sum | cut -d' ' -f1
}

step "check the base interpreter ($BASE_PYTHON is Python 3.11)"
"$BASE_PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' >&2

mkdir -p "$CACHE_HOME"
step "take the build lock $CACHE_HOME/boltz-venv.lock"
exec 9>"$CACHE_HOME/boltz-venv.lock"
flock 9

WANT="$(fingerprint)"
if [[ $REFREEZE == 0 && -f $MARKER && "$(cat "$MARKER")" == "$WANT" ]]; then
  echo "boltz-venv: up to date" >&2
  echo "$VENV/bin/python"
  exit 0
fi

started=$(date +%s)
step "create the venv $VENV"
rm -rf "$VENV"
"$BASE_PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)

PINS=(pip setuptools wheel)
if [[ $REFREEZE == 0 && -f $CONSTRAINTS ]]; then
  step "upgrade pip to the pinned version"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" "${PINS[@]}" >&2
  step "install boltz==$BOLTZ_VERSION biotite==$BIOTITE_VERSION (constrained by hack/boltz-venv.constraints.txt)"
  "${PIP[@]}" install -q -c "$CONSTRAINTS" "boltz==$BOLTZ_VERSION" "biotite==$BIOTITE_VERSION" >&2
else
  step "install boltz==$BOLTZ_VERSION biotite==$BIOTITE_VERSION (unconstrained, to refreeze)"
  "${PIP[@]}" install -q -U "${PINS[@]}" >&2
  "${PIP[@]}" install -q "boltz==$BOLTZ_VERSION" "biotite==$BIOTITE_VERSION" >&2
fi

step "check the installed set is consistent (pip check)"
"${PIP[@]}" check >&2

step "import boltz and biotite's CCD"
"$VENV/bin/python" - >&2 <<'EOF'
import importlib.metadata as md
import pathlib
import boltz.data.parse.yaml  # noqa: F401  the schema parser the fidelity tests call
import biotite.structure.info as info
assert md.version("boltz") == "2.2.1", md.version("boltz")
ccd = pathlib.Path(info.__file__).parent / "components.bcif"
assert ccd.is_file(), f"{ccd} is missing"
print(f"boltz {md.version('boltz')}, torch {md.version('torch')}, numpy {md.version('numpy')}, "
      f"biotite {md.version('biotite')}, rdkit {md.version('rdkit')}")
EOF

if [[ $REFREEZE == 1 || ! -f $CONSTRAINTS ]]; then
  step "write hack/boltz-venv.constraints.txt"
  {
    echo "# Every version in the boltz fidelity venv (hack/boltz-venv.sh)."
    echo "# Regenerate with hack/boltz-venv.sh --refreeze (a pip freeze of an unconstrained install)."
    "${PIP[@]}" freeze --all | grep -v -E '^(-e |boltz-operator|boltz-worker|boltz-contract)'
  } >"$CONSTRAINTS.tmp"
  mv "$CONSTRAINTS.tmp" "$CONSTRAINTS"
  REFREEZE=0
  WANT="$(fingerprint)"
fi

echo "$WANT" >"$MARKER"
echo "boltz-venv: built in $(($(date +%s) - started)) s, $(du -sh "$VENV" | cut -f1)" >&2
echo "$VENV/bin/python"
