#!/usr/bin/env bash
# Builds the kind node image for the Kubernetes release pinned in
# hack/kind/kube/go.mod, without pulling anything, the way `kind build
# node-image` does it with downloads: start the base image (base-image.sh),
# copy kubelet, kubeadm, kubectl and crictl in, write /kind/version and the
# CNI and storage manifests kind applies, import every image kubeadm and
# those manifests use into the node's containerd (images.sh), and commit.
#
# The image is tagged ballast-kind-node:<kubernetes version>-<input key>
# and also saved to ${BALLAST_KIND_CACHE}/node-<tag>.tar, so that a machine
# whose Docker has lost it (a fresh CI runner with the cache restored) loads
# it instead of building it again.
#
# Usage: hack/kind/node-image.sh   (prints the image name; progress on stderr)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

total=${SECONDS}
mkdir -p "${BALLAST_KIND_CACHE}"
work="$(mktemp -d)"
container=""
cleanup() {
  [[ -n "${container}" ]] && docker rm -f -v "${container}" >/dev/null 2>&1
  rm -rf "${work}"
}
trap cleanup EXIT

version="$(kube_version)"
base="$("${kind_here}/base-image.sh")"
"${kind_here}/kube.sh" >"${work}/bins"
mapfile -t archives < <("${kind_here}/images.sh" "${work}/bins")
declare -A bin
while read -r name path; do bin[$name]="${path}"; done <"${work}/bins"

helper_ref="" provisioner_ref=""
for a in "${archives[@]}"; do
  ref="$(tar -xOf "${a}" manifest.json | sed -E 's/.*"RepoTags":\["([^"]+)".*/\1/')"
  case "${ref}" in
    "${LOCAL_PATH_HELPER_IMAGE}":*) helper_ref="${ref}" ;;
    "${LOCAL_PATH_PROVISIONER_IMAGE}":*) provisioner_ref="${ref}" ;;
  esac
done
for m in default-cni default-storage; do
  sed -e "s|@HELPER_IMAGE@|${helper_ref}|g" -e "s|@PROVISIONER_IMAGE@|${provisioner_ref}|g" \
    "${kind_here}/node/manifests/${m}.yaml" >"${work}/${m}.yaml"
done

key="$(hash_inputs "${base}" "${BASH_SOURCE[0]}" "${work}/default-cni.yaml" "${work}/default-storage.yaml" \
  "$(for b in kubelet kubeadm kubectl crictl; do basename "${bin[$b]}"; done)" \
  "$(for a in "${archives[@]}"; do basename "${a}"; done)")"
image="ballast-kind-node:${version}-${key}"
saved="${BALLAST_KIND_CACHE}/node-${version}-${key}.tar"

if docker image inspect "${image}" >/dev/null 2>&1; then
  echo "${image}"
  exit 0
fi
if [[ -f "${saved}" ]]; then
  timed "docker load ${image}" docker load -i "${saved}" >/dev/null
  echo "${image}"
  exit 0
fi

container="ballast-kind-build-$$"
# Not privileged: importing images only writes containerd's content store.
docker run -d --name "${container}" --entrypoint sleep --security-opt seccomp=unconfined "${base}" infinity >/dev/null
run() { docker exec "${container}" "$@"; }

for b in kubelet kubeadm kubectl; do
  docker cp "${bin[$b]}" "${container}:/usr/bin/${b}"
done
docker cp "${bin[crictl]}" "${container}:/usr/local/bin/crictl"
run chown root:root /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl /usr/local/bin/crictl
run chmod 0755 /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl /usr/local/bin/crictl
echo -n "${version}" >"${work}/version"
docker cp "${work}/version" "${container}:/kind/version"
docker cp "${work}/default-cni.yaml" "${container}:/kind/manifests/default-cni.yaml"
docker cp "${work}/default-storage.yaml" "${container}:/kind/manifests/default-storage.yaml"

# containerd with the node's configuration, only to fill its content store.
run bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
for _ in $(seq 1 50); do
  run test -S /run/containerd/containerd.sock && run ctr version >/dev/null 2>&1 && break
  sleep 0.2
done
run ctr version >/dev/null
for a in "${archives[@]}"; do
  # --no-unpack: the content store holds plain blobs, which Docker copies
  # faithfully into the /var volume kind gives each node; the CRI plugin
  # unpacks an image the first time a pod uses it.
  timed "importing $(basename "${a}")" docker exec -i "${container}" \
    ctr --namespace=k8s.io images import --no-unpack --digests - <"${a}" >/dev/null
done
run ctr --namespace=k8s.io images list -q | grep -v '^sha256:' | sort >"${work}/imported"
mapfile -t wanted < <(run kubeadm config images list --kubernetes-version "${version}")
missing=()
for ref in "${wanted[@]}" "${helper_ref}" "${provisioner_ref}"; do
  grep -qxF "${ref}" "${work}/imported" || missing+=("${ref}")
done
if ((${#missing[@]})); then
  echo "hack/kind/node-image.sh: not in the node's containerd after import: ${missing[*]}" >&2
  exit 1
fi
run pkill containerd
for _ in $(seq 1 50); do run pgrep -x containerd >/dev/null || break; sleep 0.2; done
run rm -rf /tmp/containerd.log

timed "docker commit ${image}" docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'CMD []' \
  "${container}" "${image}" >/dev/null
# Only the newest node image is kept on disk: each is about a gigabyte.
for old in "${BALLAST_KIND_CACHE}"/node-*.tar; do
  [[ -e "${old}" && "${old}" != "${saved}" ]] && rm -f "${old}"
done
timed "docker save ${saved}" docker save -o "${saved}.tmp" "${image}"
mv "${saved}.tmp" "${saved}"
prune_images ballast-kind-node "${image#*:}"
log "node image ${image} built in $((SECONDS - total))s"
echo "${image}"
