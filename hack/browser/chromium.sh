#!/usr/bin/env bash
# Debian's chromium, pinned, for the report tests (tests/integration/report): they open the worker's HTML reports
# headless from file:// with the network off. Installed from Debian's packages when missing (root needed), as
# hack/images/lib.sh installs buildah. The last line on stdout is the browser's path; non-zero exit when it cannot
# be had (then the browser tests skip, saying why).
#
# CHROMIUM_DEB_VERSION overrides the pin (bookworm-security replaces chromium often and keeps only the newest build).
set -euo pipefail

CHROMIUM_DEB_VERSION=${CHROMIUM_DEB_VERSION:-156.0.8078.108-1~deb12u1}

if command -v chromium >/dev/null; then
  command -v chromium
  exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "chromium missing; install it (Debian bookworm: apt-get install chromium=$CHROMIUM_DEB_VERSION)" >&2
  exit 1
fi
# Another apt run (a colleague's install) holds the lock: wait for it rather than fail.
apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
# bookworm-security keeps only its newest chromium: once the pin is superseded it cannot be installed at all. Then
# take the newest one, saying so loudly (a browser for tests, not a product dependency); bump the pin to it.
if ! apt-cache madison chromium | awk '{print $3}' | grep -qxF "$CHROMIUM_DEB_VERSION"; then
  newest=$(apt-cache policy chromium | awk '/Candidate:/ {print $2}')
  echo "WARNING: chromium $CHROMIUM_DEB_VERSION is no longer in Debian's archive; installing $newest instead" \
    "(update CHROMIUM_DEB_VERSION in hack/browser/chromium.sh)" >&2
  CHROMIUM_DEB_VERSION=$newest
fi
echo "installing chromium=$CHROMIUM_DEB_VERSION from Debian's packages" >&2
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
  "chromium=$CHROMIUM_DEB_VERSION" "chromium-common=$CHROMIUM_DEB_VERSION" fonts-liberation >&2
command -v chromium
