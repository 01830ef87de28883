#!/usr/bin/env bash
# Builds the images from this checkout: Docker where an engine answers, buildah (no daemon) otherwise.
#
# Usage: hack/images/build.sh [--standin-base] IMAGE...      IMAGE: operator | worker-boltz | worker-boltzgen
#   --standin-base   build on the Debian stand-in (hack/images/standin-base.sh) instead of the Dockerfiles' pinned
#                    public base, which machines without access to Docker Hub cannot pull. Nothing else differs.
# Environment: IMAGE_TAG (default dev); images are named localhost/boltz-operator:TAG,
# localhost/boltz-worker-boltz:TAG, localhost/boltz-worker-boltzgen:TAG.
# Prints one line per image on stdout: "<image> <reference> <seconds>"; build output on stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

standin=0
images=()
for arg in "$@"; do
  case $arg in
    --standin-base) standin=1 ;;
    operator | worker-boltz | worker-boltzgen) images+=("$arg") ;;
    *) echo "usage: $0 [--standin-base] operator|worker-boltz|worker-boltzgen..." >&2; exit 2 ;;
  esac
done
((${#images[@]})) || images=(operator worker-boltz worker-boltzgen)
tag=${IMAGE_TAG:-dev}

engine=buildah
have_docker && engine=docker
[[ $engine == buildah ]] && ensure_image_tools

base_args=()
if ((standin)); then
  [[ $engine == buildah ]] || { echo "ERROR: --standin-base is for buildah builds (no Docker engine)" >&2; exit 2; }
  base_args=(--build-arg "BASE_IMAGE=$("$here/standin-base.sh")")
fi

for image in "${images[@]}"; do
  case $image in
    operator) file=Dockerfile.operator target=() ref=localhost/boltz-operator:$tag ;;
    worker-boltz) file=Dockerfile.worker target=(--target boltz) ref=localhost/boltz-worker-boltz:$tag ;;
    worker-boltzgen) file=Dockerfile.worker target=(--target boltzgen) ref=localhost/boltz-worker-boltzgen:$tag ;;
  esac
  start=$SECONDS
  echo "build-images: $image ($file ${target[*]}) with $engine" >&2
  if [[ $engine == docker ]]; then
    docker build -f "$REPO/$file" "${target[@]}" "${base_args[@]}" -t "$ref" "$REPO" >&2
  else
    mapfile -t ca < <(build_ca_args)
    # --layers: every step is cached in the project's storage, so an unchanged image rebuilds in seconds.
    # --pull=false: a base already in the storage (the stand-in, or a public base pulled once) is used as it is.
    if ! bah build --isolation chroot --network host --layers --pull=false \
      "${ca[@]}" "${base_args[@]}" -f "$REPO/$file" "${target[@]}" -t "$ref" "$REPO" >&2; then
      hint=""
      ((standin)) || hint=" (if the public base cannot be pulled here: make images-standin)"
      echo "ERROR: building $image ($file ${target[*]}) with buildah failed$hint" >&2
      exit 1
    fi
    # The image this one replaced under its tag, and its layers no other image uses: gone, so the storage holds
    # one version of each image (and the layers that make rebuilds cache hits), not one per build. A working
    # container left by a killed test still holds its image: that one stays (a warning), the build stands.
    bah rmi --prune >/dev/null 2>&1 || echo "warning: an image still used by a container was not pruned" \
      "(buildah containers --root $STORAGE_ROOT; make images-clean removes everything)" >&2
  fi
  echo "$image $ref $((SECONDS - start))"
done
