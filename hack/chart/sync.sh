#!/usr/bin/env bash
# Copies what controller-gen generates into the Helm chart, so that the chart
# installs exactly the CRDs and grants exactly the RBAC rules the code
# declares: config/crd/bases/*.yaml -> charts/ballast-operator/crds/, and
# config/rbac/role.yaml and leader_election_role.yaml ->
# charts/ballast-operator/files/ (the chart's Roles read their rules from
# them with .Files.Get). `make manifests` runs this after controller-gen; the
# chart test (make helm-lint) fails when the copies differ from config/.
#
# Usage: hack/chart/sync.sh [CONFIG_DIR]   (default: config)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
config="${1:-${root}/config}"
chart="${root}/charts/ballast-operator"

crds=("${config}"/crd/bases/*.yaml)
if [ ! -e "${crds[0]}" ] || [ ! -f "${config}/rbac/role.yaml" ] || [ ! -f "${config}/rbac/leader_election_role.yaml" ]; then
  echo "hack/chart/sync.sh: ${config}/crd/bases/*.yaml, ${config}/rbac/role.yaml or ${config}/rbac/leader_election_role.yaml is missing; run controller-gen first (make manifests)" >&2
  exit 1
fi

mkdir -p "${chart}/crds" "${chart}/files"
# Remove CRDs that config/ no longer has, then copy the current ones.
for f in "${chart}"/crds/*.yaml; do
  [ -e "${f}" ] || continue
  [ -e "${config}/crd/bases/$(basename "${f}")" ] || rm -f "${f}"
done
cp "${crds[@]}" "${chart}/crds/"
cp "${config}/rbac/role.yaml" "${config}/rbac/leader_election_role.yaml" "${chart}/files/"
echo "synced ${#crds[@]} CRD(s) and the RBAC rules into ${chart#"${root}"/}"
