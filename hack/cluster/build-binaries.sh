#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy at pinned versions and prints the
# directory that holds them. Each component is cached outside the repo under
#   ${BOLTZ_CACHE_HOME:-~/.cache/boltz-operator}/bin/<component>-<version>-<hash of its go.mod+go.sum>/
# and rebuilt only when that directory is missing. GOMODCACHE and GOCACHE live beside it.
#
# Usage: build-binaries.sh            build what is missing; print the bin dir (one line) on stdout
#        build-binaries.sh --check    exit 1 if anything would be built
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

command -v go >/dev/null || { echo "ERROR: go is not installed; the control plane is built from source with Go >= 1.21 (the pinned toolchain go1.26.8 is then fetched through the module proxy)" >&2; exit 1; }
cache=${BOLTZ_CACHE_HOME:-$HOME/.cache/boltz-operator}
# The toolchain is pinned too: a different local go fetches go1.26.8 through the module proxy.
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gocache GOFLAGS=-mod=readonly GOTOOLCHAIN=go1.26.8 CGO_ENABLED=0
bin=$cache/bin/current
mkdir -p "$cache/bin" "$bin"
check_only=${1:-}

key() { # <component> <version>: a cache key that changes when the module's pins change
  local sum
  sum=$(cat "$here/build/$1/go.mod" "$here/build/$1/go.sum" | sha256sum | cut -c1-12)
  echo "$1-$2-$sum"
}

# build <component> <version> <ldflags> <package>...: go build into the component's cache dir, then
# link its binaries into bin/current.
build() {
  local component=$1 version=$2 ldflags=$3; shift 3
  local dir
  dir=$cache/bin/$(key "$component" "$version")
  if [ ! -f "$dir/.complete" ]; then
    if [ "$check_only" = --check ]; then echo "would build $component $version" >&2; exit 1; fi
    echo "building $component $version (first time; cached afterwards in $dir)" >&2
    local start=$SECONDS
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    if ! (cd "$here/build/$component" && go build -trimpath -ldflags "-s -w $ldflags" -o "$dir.tmp/" "$@") >&2; then
      echo "ERROR: building $component $version failed (go $(go env GOVERSION), module hack/cluster/build/$component)" >&2
      exit 1
    fi
    touch "$dir.tmp/.complete" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
    echo "built $component $version in $((SECONDS - start)) s" >&2
  fi
  local f
  for f in "$dir"/*; do ln -sfn "$f" "$bin/$(basename "$f")"; done
}

kube_minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build etcd "$ETCD_VERSION" "" .
build kwok "$KWOK_VERSION" "" sigs.k8s.io/kwok/cmd/kwok
build helm "$HELM_VERSION" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor" \
  helm.sh/helm/v3/cmd/helm
build kubernetes "$KUBERNETES_VERSION" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
echo "$bin"
