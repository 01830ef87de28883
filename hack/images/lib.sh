# Shared by hack/images/*.sh (sourced): where images are built and kept, and the buildah invocation.
#
# buildah builds without a daemon: chroot isolation (no user namespaces needed), host network (so pip reaches the
# package index the way the host does), overlay storage in a root of its own under the project's cache, so the
# layers survive between runs (a warm build is a cache hit) and `images-clean.sh` removes exactly what we made.
# shellcheck shell=bash

CACHE_HOME=${BOLTZ_CACHE_HOME:-$HOME/.cache/boltz-operator}
IMAGES_HOME=$CACHE_HOME/images
STORAGE_ROOT=$IMAGES_HOME/storage
RUN_ROOT=${BOLTZ_IMAGES_RUNROOT:-/run/boltz-operator-buildah}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Debian packages the image tooling needs, pinned to bookworm's versions (installed by ensure_image_tools).
BUILDAH_DEB_VERSION=1.28.2+ds1-3+deb12u1+b3
DEBOOTSTRAP_DEB_VERSION=1.0.128+nmu2+deb12u2

bah() { buildah --root "$STORAGE_ROOT" --runroot "$RUN_ROOT" --storage-driver overlay "$@"; }

# Docker where an engine answers; buildah otherwise (these machines).
have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

ensure_image_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=("buildah=$BUILDAH_DEB_VERSION")
  command -v debootstrap >/dev/null || missing+=("debootstrap=$DEBOOTSTRAP_DEB_VERSION")
  ((${#missing[@]})) || return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "ERROR: ${missing[*]} missing; install them (Debian bookworm: apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "installing ${missing[*]} from Debian's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# The CA bundle the host trusts, for pip inside a build (these machines reach the package index through a proxy
# with its own CA): mounted read-only over the base's own bundle (which both bases have, so no mount point is left
# in a layer) during RUN steps only, and named by the Dockerfiles' build-time `ARG PIP_CERT`. Prints build args.
build_ca_args() {
  local bundle=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
  [[ -f $bundle ]] || return 0
  echo "--volume=$bundle:/etc/ssl/certs/ca-certificates.crt:ro"
  echo "--build-arg=PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
}
