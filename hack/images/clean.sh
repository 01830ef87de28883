#!/usr/bin/env bash
# Removes everything hack/images/ built or cached: working containers, images and layers (the project's own buildah
# storage), and the stand-in base's tarball. The next build is cold again (minutes for the worker images).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

if command -v buildah >/dev/null && [[ -d $STORAGE_ROOT ]]; then
  bah rm --all >/dev/null 2>&1 || true
  bah rmi --all --force >/dev/null 2>&1 || true
fi
rm -rf "$IMAGES_HOME"
echo "removed $IMAGES_HOME" >&2
