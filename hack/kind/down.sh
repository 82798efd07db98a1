#!/usr/bin/env bash
# Deletes the kind cluster make kind-up created (KIND_CLUSTER, default ballast).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cluster="${KIND_CLUSTER:-ballast}"
"${kind_here}/kind" delete cluster --name "${cluster}"
rm -f "${KIND_KUBECONFIG:-${kind_root}/.run/kind/${cluster}.kubeconfig}"
