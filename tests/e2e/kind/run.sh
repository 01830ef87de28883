#!/usr/bin/env bash
# boltz-operator end to end on real GPUs: a kind cluster with GPU passthrough, the NVIDIA device plugin, the images
# built from this checkout, the Helm chart, a results store, the model cache (a real ~6 GB download from Hugging
# Face) and one real Boltz-2 prediction. See README.md beside this file for the host setup it expects.
#
#   tests/e2e/kind/run.sh          create (or reuse) the cluster and run everything
#   tests/e2e/kind/run.sh down     delete the cluster
#
# Environment (all optional):
#   BOLTZ_E2E_CLUSTER   kind cluster name (boltz-e2e)
#   BOLTZ_E2E_SKIP_BUILD=1   use images already built (boltz-operator:e2e, boltz-worker-boltz:e2e)
#   RESULTS_S3_URI, RESULTS_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#                       write results to S3 (a Secret holds the keys); default: a PVC in the namespace
set -euo pipefail

# ---- pinned versions
KIND_VERSION=v0.33.0
NODE_IMAGE=kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0
DEVICE_PLUGIN_CHART_VERSION=0.18.0              # https://nvidia.github.io/k8s-device-plugin
NVIDIA_CONTAINER_TOOLKIT_VERSION=1.17.8-1       # installed inside the kind node
HELM_MIN_VERSION=v3.16

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
CLUSTER=${BOLTZ_E2E_CLUSTER:-boltz-e2e}
NAMESPACE=boltz-e2e
CONTEXT=kind-$CLUSTER
OPERATOR_IMAGE=boltz-operator:e2e
WORKER_IMAGE=boltz-worker-boltz:e2e
K=(kubectl --context "$CONTEXT")

step() { echo; echo "==> $*"; }
fail() { echo "ERROR: $*" >&2; exit 1; }

if [[ ${1:-} == down ]]; then
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

step "check the host: Docker, NVIDIA driver and container toolkit, kind $KIND_VERSION, kubectl, helm"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info)"
nvidia-smi -L || fail "nvidia-smi finds no GPU: install the NVIDIA driver"
[[ $(docker info --format '{{.DefaultRuntime}}') == nvidia ]] ||
  fail "Docker's default runtime is not nvidia: sudo nvidia-ctk runtime configure --runtime=docker --set-as-default && sudo systemctl restart docker"
grep -Eq '^\s*accept-nvidia-visible-devices-as-volume-mounts\s*=\s*true' /etc/nvidia-container-runtime/config.toml ||
  fail "GPUs are not passed to kind nodes: sudo nvidia-ctk config --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place"
command -v kind >/dev/null || fail "kind is missing: go install sigs.k8s.io/kind@$KIND_VERSION"
[[ $(kind version) == *"$KIND_VERSION"* ]] || echo "warning: kind is not $KIND_VERSION ($(kind version)); tested with $KIND_VERSION"
command -v kubectl >/dev/null || fail "kubectl is missing"
command -v helm >/dev/null || fail "helm ($HELM_MIN_VERSION or later) is missing"

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  step "create kind cluster $CLUSTER ($NODE_IMAGE) with every GPU passed through"
  # The NVIDIA runtime reads the GPU list from volume mounts under /var/run/nvidia-container-devices.
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s --config - <<'KIND'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraMounts:
      - hostPath: /dev/null
        containerPath: /var/run/nvidia-container-devices/all
KIND

  step "install the NVIDIA container toolkit $NVIDIA_CONTAINER_TOOLKIT_VERSION in the node; containerd gets the nvidia runtime"
  node=$CLUSTER-control-plane
  docker exec "$node" umount -R /proc/driver/nvidia 2>/dev/null || true  # a read-only mount the toolkit must replace
  docker exec -e V="$NVIDIA_CONTAINER_TOOLKIT_VERSION" "$node" bash -euo pipefail -c '
    apt-get update -qq && apt-get install -y -qq curl gpg >/dev/null
    curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey |
      gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
    curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list |
      sed "s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g" \
      >/etc/apt/sources.list.d/nvidia-container-toolkit.list
    apt-get update -qq
    apt-get install -y -qq nvidia-container-toolkit="$V" nvidia-container-toolkit-base="$V" \
      libnvidia-container-tools="$V" libnvidia-container1="$V" >/dev/null
    nvidia-ctk runtime configure --runtime=containerd --set-as-default
    systemctl restart containerd'
fi
"${K[@]}" wait --for=condition=Ready node --all --timeout=180s

step "RuntimeClass nvidia and the NVIDIA device plugin (chart $DEVICE_PLUGIN_CHART_VERSION)"
"${K[@]}" apply -f - <<'RC'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: nvidia}
handler: nvidia
RC
helm --kube-context "$CONTEXT" upgrade --install nvdp nvidia-device-plugin \
  --repo https://nvidia.github.io/k8s-device-plugin --version "$DEVICE_PLUGIN_CHART_VERSION" \
  --namespace nvidia-device-plugin --create-namespace --set runtimeClassName=nvidia --wait --timeout 5m
for _ in $(seq 60); do
  gpus=$("${K[@]}" get nodes -o jsonpath='{.items[0].status.allocatable.nvidia\.com/gpu}')
  [[ -n $gpus && $gpus != 0 ]] && break
  sleep 5
done
[[ -n ${gpus:-} && $gpus != 0 ]] || fail "the node advertises no nvidia.com/gpu: kubectl -n nvidia-device-plugin logs ds/nvdp-nvidia-device-plugin"
echo "node allocatable nvidia.com/gpu: $gpus"

if [[ ${BOLTZ_E2E_SKIP_BUILD:-0} != 1 ]]; then
  step "build the images from this checkout (the worker image holds torch with CUDA: several GB)"
  docker build -f "$REPO/Dockerfile.operator" -t "$OPERATOR_IMAGE" "$REPO"
  docker build -f "$REPO/Dockerfile.worker" --target boltz -t "$WORKER_IMAGE" "$REPO"
fi
step "load the images into the node (no registry)"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$WORKER_IMAGE"

step "namespace $NAMESPACE (restricted Pod Security) and the results store"
"${K[@]}" create namespace "$NAMESPACE" --dry-run=client -o yaml | "${K[@]}" apply -f -
"${K[@]}" label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted
results_values=()
if [[ -n ${RESULTS_S3_URI:-} ]]; then
  "${K[@]}" -n "$NAMESPACE" create secret generic results-s3 --dry-run=client -o yaml \
    --from-literal=AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:?}" --from-literal=AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:?}" |
    "${K[@]}" apply -f -
  results_values=(--set "defaultResults.s3.uri=$RESULTS_S3_URI" --set "defaultResults.s3.credentialsSecret=results-s3")
  [[ -n ${RESULTS_S3_ENDPOINT:-} ]] && results_values+=(--set "defaultResults.s3.endpoint=$RESULTS_S3_ENDPOINT")
else
  "${K[@]}" -n "$NAMESPACE" apply -f - <<'PVC'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: results}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
PVC
  results_values=(--set defaultResults.pvc.claimName=results)
fi

step "helm install the chart (operator in boltz-system, watching $NAMESPACE)"
"${K[@]}" create namespace boltz-system --dry-run=client -o yaml | "${K[@]}" apply -f -
"${K[@]}" label namespace boltz-system --overwrite pod-security.kubernetes.io/enforce=restricted
helm --kube-context "$CONTEXT" upgrade --install boltz-operator "$REPO/helm/boltz-operator" --namespace boltz-system \
  --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE#*:}" --set image.pullPolicy=Never \
  --set workerImages.boltz.repository="${WORKER_IMAGE%:*}" --set workerImages.boltz.tag="${WORKER_IMAGE#*:}" \
  --set workerImages.pullPolicy=Never --set gpu.runtimeClassName=nvidia \
  --set workers.cpu=4 --set workers.memory=16Gi \
  --set "watchNamespaces={$NAMESPACE}" "${results_values[@]}" --wait --timeout 5m

step "the model cache: one download from Hugging Face into a PVC (ReadWriteOnce: kind has one node)"
sed 's/size: 20Gi/size: 20Gi\n    accessModes: [ReadWriteOnce]/' "$REPO/examples/modelcache.yaml" | "${K[@]}" -n "$NAMESPACE" apply -f -
"${K[@]}" -n "$NAMESPACE" wait --for=condition=Ready boltzmodelcache/default --timeout=60m

step "one prediction: EGFR kinase domain + erlotinib, structure and affinity"
"${K[@]}" -n "$NAMESPACE" apply -f "$REPO/examples/prediction.yaml"
if ! "${K[@]}" -n "$NAMESPACE" wait --for=condition=Complete boltzprediction/egfr-erlotinib --timeout=60m; then
  "${K[@]}" -n "$NAMESPACE" describe boltzprediction egfr-erlotinib
  "${K[@]}" -n "$NAMESPACE" logs job/egfr-erlotinib-predict --tail=100 || true
  fail "the prediction did not complete"
fi
"${K[@]}" -n "$NAMESPACE" get boltzmodelcaches,boltzpredictions
echo "results: $("${K[@]}" -n "$NAMESPACE" get boltzprediction egfr-erlotinib -o jsonpath='{.status.results}')"
echo "E2E OK: phase $("${K[@]}" -n "$NAMESPACE" get boltzprediction egfr-erlotinib -o jsonpath='{.status.phase}')"
