#!/usr/bin/env bash
# Builds kube-apiserver and kubectl at the Kubernetes release pinned in
# hack/kube/go.mod into a cache outside the work tree
# (${BALLAST_TOOLS_CACHE:-~/.cache/ballast/tools}/<tool>-<version>) and links
# them as bin/<tool>, like hack/tools.sh. A binary whose versioned file already
# exists is not rebuilt. The first build of kube-apiserver takes several
# minutes on a small machine; later runs take well under a second.
#
# Usage: hack/kube/build.sh [tool...]   (default: kube-apiserver kubectl)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
bin="${root}/bin"
cache="${BALLAST_TOOLS_CACHE:-${HOME}/.cache/ballast/tools}"

declare -A pkg=(
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
)

tools=("$@")
if [ ${#tools[@]} -eq 0 ]; then
  tools=(kube-apiserver kubectl)
fi

version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }
                $1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "${here}/go.mod")"
if [ -z "${version}" ]; then
  echo "hack/kube/build.sh: k8s.io/kubernetes is not required in ${here}/go.mod" >&2
  exit 1
fi
# The release's own build (hack/lib/version.sh) stamps these; without them the
# binaries call themselves v0.0.0-master, which kubectl's skew check and
# /version would show.
minor="${version#v1.}"
minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
ldflags="-s -w -X ${vpkg}.gitVersion=${version} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor}"
ldflags+=" -X ${vpkg}.gitTreeState=clean -X ${vpkg}.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${version} -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitTreeState=clean"

mkdir -p "${bin}" "${cache}"
for tool in "${tools[@]}"; do
  if [ -z "${pkg[$tool]+x}" ]; then
    echo "hack/kube/build.sh: unknown tool '${tool}' (known: ${!pkg[*]})" >&2
    exit 2
  fi
  target="${cache}/${tool}-${version}"
  if [ ! -x "${target}" ]; then
    echo "building ${tool} ${version} (first build takes minutes)"
    start=${SECONDS}
    # No -trimpath and CGO_ENABLED=0, exactly as make kube-test compiles the
    # test, so that the test reuses the compiled client-go, apimachinery,
    # etcd client, ... from the build cache instead of compiling them again.
    (cd "${here}" && GOWORK=off CGO_ENABLED=0 go build -ldflags "${ldflags}" -o "${target}.tmp" "${pkg[$tool]}")
    mv "${target}.tmp" "${target}"
    echo "built ${tool} ${version} in $((SECONDS - start))s"
  fi
  ln -sfn "${target}" "${bin}/${tool}"
done
