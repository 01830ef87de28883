#!/usr/bin/env bash
# The stand-in for the Dockerfiles' public base image (python:3.11-slim-bookworm), for machines that cannot pull
# it: Debian bookworm's own minimal system with its Python 3.11 (`python` and `python3` at /usr/bin), made by
# debootstrap once, kept as a tarball under ${BOLTZ_CACHE_HOME:-~/.cache/boltz-operator}/images/ and imported into
# the project's buildah storage. Keyed by its inputs (format, suite, mirror, packages): a change rebuilds it, and
# every image built on it.
#
# Prints the image reference (localhost/boltz-standin-base:<key>) as the last line on stdout; progress on stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3-venv brings ensurepip (the Dockerfiles make venvs); python-is-python3 gives `python` as the public image
# has; ca-certificates as the public image has.
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates

FORMAT=1  # bump when what this script makes of the packages changes (the files removed, the image config)
key=$(echo "$FORMAT $SUITE $MIRROR $PACKAGES" | sha256sum | cut -c1-12)
ref=localhost/boltz-standin-base:$key
tarball=$IMAGES_HOME/standin-base-$key.tar

ensure_image_tools
mkdir -p "$IMAGES_HOME"
exec 9>"$IMAGES_HOME/standin-base.lock"
flock 9

if ! [[ -f $tarball ]]; then
  echo "standin-base: debootstrap $SUITE ($PACKAGES), once; cached as $tarball" >&2
  start=$SECONDS
  work=$(mktemp -d "$IMAGES_HOME/debootstrap.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/log" 2>&1; then
    tail -n 20 "$work/log" >&2
    echo "ERROR: debootstrap $SUITE from $MIRROR failed (log above)" >&2
    exit 1
  fi
  # What a container image carries no copy of: apt's lists and caches, logs.
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb \
    "$work"/rootfs/var/log/*
  tar -C "$work/rootfs" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  echo "standin-base: built in $((SECONDS - start)) s" >&2
fi

if ! bah inspect --type image "$ref" >/dev/null 2>&1; then
  echo "standin-base: importing $tarball as $ref" >&2
  ctr=$(bah from --pull-never scratch)
  mnt=$(bah mount "$ctr")
  tar -C "$mnt" --numeric-owner -xf "$tarball"
  bah umount "$ctr" >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 "$ctr"
  bah commit --rm -q "$ctr" "$ref" >/dev/null
  # Stand-ins of other keys are stale: their tarballs and images go (layers built on them, at the next prune).
  find "$IMAGES_HOME" -maxdepth 1 -name 'standin-base-*.tar' ! -name "standin-base-$key.tar" -delete
  bah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/boltz-standin-base:' | grep -v ":$key\$" |
    xargs -r buildah --root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver overlay rmi -f >/dev/null || true
fi
echo "$ref"
