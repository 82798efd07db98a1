#!/usr/bin/env bash
# Builds the pinned external tools into a cache outside the work tree
# (${BALLAST_TOOLS_CACHE:-~/.cache/ballast/tools}/<tool>-<version>) and links
# them as bin/<tool>. The versions come from hack/tools/go.mod, so bumping a
# version there is the whole upgrade; a tool whose versioned binary already
# exists is not rebuilt, so fresh clones (CI) reuse earlier builds.
#
# Usage: hack/tools.sh [tool...]   (default: all of etcdctl etcdutl staticcheck;
# etcd, the real server used as a baseline by hack/compat, controller-gen,
# used by make manifests/generate, and helm and kind (hack/tools/cluster), used
# by make helm-lint, kind-up and e2e, only on request)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${root}/bin"
cache="${BALLAST_TOOLS_CACHE:-${HOME}/.cache/ballast/tools}"

# tool -> "module package [dir]": dir is the module under hack/tools that pins
# it (default: hack/tools itself).
declare -A spec=(
  [etcdctl]="go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdctl/v3"
  [etcdutl]="go.etcd.io/etcd/etcdutl/v3 go.etcd.io/etcd/etcdutl/v3"
  [etcd]="go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3"
  [staticcheck]="honnef.co/go/tools honnef.co/go/tools/cmd/staticcheck"
  [controller-gen]="sigs.k8s.io/controller-tools sigs.k8s.io/controller-tools/cmd/controller-gen"
  [helm]="helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm cluster"
  [kind]="sigs.k8s.io/kind sigs.k8s.io/kind cluster"
)

tools=("$@")
if [ ${#tools[@]} -eq 0 ]; then
  tools=(etcdctl etcdutl staticcheck)
fi

mkdir -p "${bin}" "${cache}"
for tool in "${tools[@]}"; do
  if [ -z "${spec[$tool]+x}" ]; then
    echo "hack/tools.sh: unknown tool '${tool}' (known: ${!spec[*]})" >&2
    exit 2
  fi
  read -r module pkg dir <<<"${spec[$tool]}"
  moddir="${root}/hack/tools/${dir:-.}"
  mod="${moddir}/go.mod"
  version="$(awk -v m="${module}" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "${mod}")"
  if [ -z "${version}" ]; then
    echo "hack/tools.sh: ${module} is not required in ${mod}" >&2
    exit 1
  fi
  target="${cache}/${tool}-${version}"
  if [ ! -x "${target}" ]; then
    echo "building ${tool} ${version}"
    # The tools module pins these; their own go.mod files carry replace
    # directives, which is why they cannot be 'go install'ed at a version.
    (cd "${moddir}" && GOWORK=off CGO_ENABLED=0 go build -trimpath -o "${target}.tmp" "${pkg}")
    mv "${target}.tmp" "${target}"
  fi
  ln -sfn "${target}" "${bin}/${tool}"
done
