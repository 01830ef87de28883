#!/usr/bin/env bash
# Refresh the vendored 3Dmol.js of the worker's HTML reports (worker/boltz_worker/report/vendor/) from the npm
# registry: `hack/vendor-3dmol.sh 2.5.5`. Then put the printed sha256 in vendor/README.md and report/vendored.py.
set -euo pipefail
VERSION=${1:?usage: $0 VERSION}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$REPO/worker/boltz_worker/report/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "3dmol@$VERSION" >/dev/null && tar xzf "3dmol-$VERSION.tgz")
cp "$WORK/package/build/3Dmol-min.js" "$DEST/3Dmol-min.js"
cp "$WORK/package/build/3Dmol-min.js.LICENSE.txt" "$DEST/3Dmol-min.js.LICENSE.txt"
cp "$WORK/package/LICENSE" "$DEST/3Dmol-LICENSE"
sha256sum "$DEST/3Dmol-min.js"
