# Shared settings of the kind recipe (sourced, not run). Every version the
# node image is built from is pinned here or in a go.mod under hack/kind, and
# every artifact is cached under ${BALLAST_KIND_CACHE} by a key derived from
# its inputs, so a second build reuses everything and a changed pin rebuilds
# only what depends on it.

kind_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kind_root="$(cd "${kind_here}/../.." && pwd)"
BALLAST_KIND_CACHE="${BALLAST_KIND_CACHE:-${HOME}/.cache/ballast/kind}"
BALLAST_TOOLS_CACHE="${BALLAST_TOOLS_CACHE:-${HOME}/.cache/ballast/tools}"

# Debian release and mirror the node's root file system comes from.
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# The Kubernetes release: the k8s.io/kubernetes requirement of
# hack/kind/kube/go.mod (hack/kube/go.mod must name the same one).
kube_version() {
  awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "${kind_here}/kube/go.mod"
}

# The image names kubeadm, containerd and the node's manifests expect.
# kubeadm's own list (kubeadm config images list) is checked against these
# when the node image is assembled.
PAUSE_IMAGE="registry.k8s.io/pause:3.10.2"
LOCAL_PATH_PROVISIONER_IMAGE="ballast.local/local-path-provisioner" # :<module version>
LOCAL_PATH_HELPER_IMAGE="ballast.local/local-path-helper"           # :<busybox version>

log() { echo "$(date +%H:%M:%S) $*" >&2; }

# ensure_debs installs the Debian packages whose command (the part before
# ':' in each argument, package:command) is missing, with apt-get: the
# recipe installs what it needs itself. Needs root.
ensure_debs() {
  local want=() item
  for item in "$@"; do
    command -v "${item#*:}" >/dev/null || want+=("${item%%:*}")
  done
  ((${#want[@]})) || return 0
  if [[ $(id -u) != 0 ]]; then
    echo "hack/kind: ${want[*]} not installed, and installing needs root (apt-get install ${want[*]})" >&2
    return 1
  fi
  log "installing Debian packages: ${want[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
}

# hash_inputs prints a short digest of the named files and strings: the cache
# key of whatever is built from them.
hash_inputs() {
  local item
  for item in "$@"; do
    if [[ -d "${item}" ]]; then
      (cd "${item}" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    elif [[ -f "${item}" ]]; then
      sha256sum <"${item}"
    else
      printf '%s\n' "${item}"
    fi
  done | sha256sum | cut -c1-12
}

# timed runs a command and logs how long it took.
timed() {
  local what="$1" start=${SECONDS}
  shift
  log "${what} ..."
  "$@"
  log "${what}: done in $((SECONDS - start))s"
}

# mkimage builds hack/image/mkimage once per run and prints its path.
mkimage_bin() {
  local out="${BALLAST_KIND_CACHE}/bin/mkimage"
  mkdir -p "${BALLAST_KIND_CACHE}/bin"
  (cd "${kind_root}" && CGO_ENABLED=0 go build -o "${out}" ./hack/image/mkimage)
  echo "${out}"
}

# Where Docker cannot start privileged containers (README.md), kind must run
# with docker-shim first on its PATH. up.sh probes once per Docker daemon and
# records the answer; the kind wrapper (hack/kind/kind) reads it.
probe_file() {
  echo "${BALLAST_KIND_CACHE}/privileged-probe-$(docker info --format '{{.ID}}' 2>/dev/null | tr -c 'A-Za-z0-9\n' '_')"
}

# privileged_probe IMAGE: runs a privileged container of IMAGE once and
# records whether the shim is needed; fails on any other error.
privileged_probe() {
  local out
  mkdir -p "${BALLAST_KIND_CACHE}"
  if out="$(docker run --rm --privileged --entrypoint /bin/true "$1" 2>&1)"; then
    echo direct >"$(probe_file)"
  elif grep -q "unable to apply caps" <<<"${out}"; then
    log "Docker cannot start privileged containers here (the capability bounding set lacks some); kind runs with hack/kind/docker-shim"
    echo shim >"$(probe_file)"
  else
    echo "hack/kind: a privileged probe container failed: ${out}" >&2
    return 1
  fi
}

needs_docker_shim() {
  [[ "$(cat "$(probe_file)" 2>/dev/null)" == shim ]]
}

# prune_images REPOSITORY KEEP_TAG: removes the other tags of one of this
# recipe's repositories from Docker (each node image is over a gigabyte).
# Images a container still uses stay.
prune_images() {
  local ref
  for ref in $(docker images "$1" --format '{{.Repository}}:{{.Tag}}'); do
    [[ "${ref}" == "$1:$2" ]] || docker rmi "${ref}" >/dev/null 2>&1 || true
  done
}
