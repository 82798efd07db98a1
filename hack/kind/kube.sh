#!/usr/bin/env bash
# Builds the Kubernetes programs of the kind node image from the Go module
# proxy, one at a time (they share most of their packages, so each build
# after the first mostly reuses the build cache): kubelet, kubeadm,
# kube-controller-manager, kube-scheduler and kube-proxy from
# hack/kind/kube/go.mod, crictl from hack/kind/crictl/go.mod; kube-apiserver
# and kubectl through hack/kube/build.sh (the same release). Each lands in ${BALLAST_TOOLS_CACHE}/<name>-<version>
# and is not rebuilt while that file exists. First build: roughly 5 minutes
# per program on 2 shared cores.
#
# Usage: hack/kind/kube.sh   (prints "<name> <path>" per program)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version="$(kube_version)"
if [[ -z "${version}" ]]; then
  echo "hack/kind/kube.sh: k8s.io/kubernetes is not required in hack/kind/kube/go.mod" >&2
  exit 1
fi
hack_kube="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "${kind_root}/hack/kube/go.mod")"
if [[ "${hack_kube}" != "${version}" ]]; then
  echo "hack/kind/kube.sh: hack/kind/kube/go.mod pins ${version} but hack/kube/go.mod pins ${hack_kube}; bump them together" >&2
  exit 1
fi
crictl_version="$(awk '$1 == "sigs.k8s.io/cri-tools" && $2 ~ /^v[0-9]/ { print $2; exit }' "${kind_here}/crictl/go.mod")"

# The release build (hack/lib/version.sh) stamps these; kubeadm refuses to
# work with a kubelet or control plane that calls itself v0.0.0-master.
minor="${version#v1.}"
minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
ldflags="-s -w -X ${vpkg}.gitVersion=${version} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor}"
ldflags+=" -X ${vpkg}.gitTreeState=clean -X ${vpkg}.buildDate=1970-01-01T00:00:00Z"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${version} -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=${minor} -X k8s.io/client-go/pkg/version.gitTreeState=clean"

declare -A pkg=(
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [kubeadm]=k8s.io/kubernetes/cmd/kubeadm
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
  [crictl]=sigs.k8s.io/cri-tools/cmd/crictl
)
order=(kubeadm kubelet kube-proxy kube-scheduler kube-controller-manager crictl)

mkdir -p "${BALLAST_TOOLS_CACHE}"
for name in "${order[@]}"; do
  v="${version}"
  flags="${ldflags}"
  moddir="${kind_here}/kube"
  if [[ "${name}" == crictl ]]; then
    v="${crictl_version}"
    flags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${v}"
    moddir="${kind_here}/crictl"
  fi
  target="${BALLAST_TOOLS_CACHE}/${name}-${v}"
  if [[ ! -x "${target}" ]]; then
    # CGO_ENABLED=0: static binaries, as the release builds them; the node
    # image and the FROM-scratch images need no C library for them. No
    # -trimpath, as in hack/kube/build.sh: with the same flags and the same
    # dependency versions (hack/kind/kube/go.mod resolves exactly the
    # release's), the packages kube-apiserver's build compiled come from the
    # build cache instead of being compiled again.
    timed "building ${name} ${v}" \
      bash -c 'cd "$1" && GOWORK=off CGO_ENABLED=0 go build -ldflags "$2" -o "$3.tmp" "$4"' _ \
      "${moddir}" "${flags}" "${target}" "${pkg[$name]}" >&2
    mv "${target}.tmp" "${target}"
  fi
  echo "${name} ${target}"
done

"${kind_root}/hack/kube/build.sh" kube-apiserver kubectl >&2
for name in kube-apiserver kubectl; do
  echo "${name} ${BALLAST_TOOLS_CACHE}/${name}-${version}"
done
