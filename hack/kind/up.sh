#!/usr/bin/env bash
# Creates a kind cluster (make kind-up) and prints how to reach it.
#
#   KIND_CLUSTER      cluster name (default ballast)
#   KIND_NODE_IMAGE   node image; empty: build or reuse the local one
#                     (hack/kind/node-image.sh). On a machine that can pull,
#                     a stock image works too, e.g. kindest/node:v1.36.x.
#   KIND_KUBECONFIG   where the kubeconfig goes (default .run/kind/<cluster>.kubeconfig)
#   KIND_WAIT         how long kind waits for the control plane (default 5m)
#   KIND_RETAIN=1     keep the node container when creation fails, to look inside
#
# Where Docker cannot start privileged containers (hack/kind/README.md), kind
# runs with hack/kind/docker-shim first on its PATH: run kind on such a
# cluster through hack/kind/kind (e.g. hack/kind/kind load docker-image X
# --name ballast), which does the same.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cluster="${KIND_CLUSTER:-ballast}"
kubeconfig="${KIND_KUBECONFIG:-${kind_root}/.run/kind/${cluster}.kubeconfig}"
image="${KIND_NODE_IMAGE:-}"
kind="${kind_here}/kind"

if [[ -z "${image}" ]]; then
  image="$("${kind_here}/node-image.sh")"
fi

if "${kind}" get clusters 2>/dev/null | grep -qxF "${cluster}"; then
  log "kind cluster ${cluster} exists already; writing its kubeconfig"
  mkdir -p "$(dirname "${kubeconfig}")"
  "${kind}" get kubeconfig --name "${cluster}" >"${kubeconfig}"
else
  # A privileged probe tells whether this Docker can run kind's nodes as
  # they are; hack/kind/kind adds the shim when it cannot.
  privileged_probe "${image}"
  mkdir -p "$(dirname "${kubeconfig}")"
  start=${SECONDS}
  retain=()
  [[ "${KIND_RETAIN:-}" == 1 ]] && retain=(--retain)
  "${kind}" create cluster --name "${cluster}" --image "${image}" "${retain[@]}" \
    --config "${kind_here}/cluster.yaml" --kubeconfig "${kubeconfig}" --wait "${KIND_WAIT:-5m}" >&2
  log "kind cluster ${cluster} created in $((SECONDS - start))s"
fi

cat >&2 <<MSG
kind cluster ${cluster} (node image ${image}) is up.
  export KUBECONFIG=${kubeconfig}
  kubectl get nodes
  make kind-down   # delete it (KIND_CLUSTER=${cluster})
MSG
