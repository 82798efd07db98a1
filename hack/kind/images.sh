#!/usr/bin/env bash
# Builds the container images a kind node preloads, without pulling any:
# each is a single-layer image written by hack/image/mkimage from a program
# built from the Go module proxy or taken from a Debian package, tagged with
# the exact name kubeadm, containerd or the node's manifests ask for.
#
#   registry.k8s.io/pause                  hack/kind/pause (Go, reaps zombies)
#   registry.k8s.io/kube-apiserver,        hack/kind/kube.sh, FROM scratch
#     kube-controller-manager, kube-scheduler
#   registry.k8s.io/kube-proxy             kube-proxy on a Debian minbase with
#                                          iptables, nftables, conntrack, ipset
#   registry.k8s.io/etcd                   bin/ballast, run as `etcd` (argv[0]);
#                                          KIND_ETCD=etcd: the pinned real etcd
#   registry.k8s.io/coredns/coredns        hack/kind/coredns (module proxy)
#   ballast.local/local-path-provisioner   hack/kind/localpath (module proxy)
#   ballast.local/local-path-helper        Debian's busybox-static (a shell for
#                                          the provisioner's helper pods and
#                                          the node's CNI installer)
#
# Every archive is cached under ${BALLAST_KIND_CACHE}/images by its inputs.
#
# Usage: hack/kind/images.sh KUBE_BIN_LIST   (the output of hack/kind/kube.sh;
#        prints one docker-archive path per image)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

declare -A bin
while read -r name path; do
  bin[$name]="${path}"
done <"${1:?usage: images.sh KUBE_BIN_LIST}"

version="$(kube_version)"
images="${BALLAST_KIND_CACHE}/images"
mkdir -p "${images}"
mkimage="$(mkimage_bin)"
work="$(mktemp -d)"
chmod 0755 "${work}" # apt-get download runs as _apt and must see it
trap 'rm -rf "${work}"' EXIT

# kubeadm's own list of images for this release; the tags below must match
# it exactly or kubeadm would try to pull.
mapfile -t wanted < <("${bin[kubeadm]}" config images list --kubernetes-version "${version}")
tag_of() { # tag_of REPOSITORY -> the tag kubeadm wants for it
  local ref
  for ref in "${wanted[@]}"; do
    if [[ "${ref%:*}" == "$1" ]]; then
      echo "${ref##*:}"
      return
    fi
  done
  echo "hack/kind/images.sh: kubeadm ${version} does not list $1 (it lists: ${wanted[*]})" >&2
  exit 1
}
if [[ "$(tag_of registry.k8s.io/pause)" != "${PAUSE_IMAGE##*:}" ]]; then
  echo "hack/kind/images.sh: kubeadm wants registry.k8s.io/pause:$(tag_of registry.k8s.io/pause); update PAUSE_IMAGE in hack/kind/lib.sh and sandbox_image in hack/kind/node/files/etc/containerd/config.toml" >&2
  exit 1
fi

# emit NAME:TAG KEY MKIMAGE-ARGS...: writes the archive unless cached, prints
# its path.
emit() {
  local ref="$1" key="$2"
  shift 2
  local safe="${ref//[\/:]/_}"
  local out="${images}/${safe}-${key}.tar"
  if [[ ! -f "${out}" ]]; then
    # Archives of this image built from other inputs are stale now.
    rm -f "${images}/${safe}"-*.tar
    "${mkimage}" -o "${out}" -tag "${ref}" "$@" >/dev/null
    log "image ${ref} written"
  fi
  echo "${out}"
}

common_etc() {
  "${kind_root}/hack/image/layout.sh" "${work}/etc"
  echo -add "${work}/etc/passwd:/etc/passwd:0644" -add "${work}/etc/group:/etc/group:0644" \
    -add "${work}/etc/nsswitch.conf:/etc/nsswitch.conf:0644" -dir /tmp:1777
}

script_key="$(hash_inputs "${BASH_SOURCE[0]}" "${kind_root}/hack/image/mkimage" "${kind_root}/hack/image/layout.sh")"

# pause
pause_bin="${BALLAST_KIND_CACHE}/bin/pause"
(cd "${kind_root}" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "${pause_bin}" ./hack/kind/pause)
emit "${PAUSE_IMAGE}" "$(hash_inputs "${script_key}" "${kind_root}/hack/kind/pause")" \
  -add "${pause_bin}:/pause:0755" -user 65535:65535 -entrypoint '["/pause"]'

# Control plane programs: static binaries FROM scratch, run by kubeadm's
# static pods as `<name> --flags` (PATH lookup) as root.
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  emit "registry.k8s.io/${name}:$(tag_of "registry.k8s.io/${name}")" "$(hash_inputs "${script_key}" "${version}")" \
    -add "${bin[$name]}:/usr/local/bin/${name}:0755" $(common_etc) \
    -env PATH=/usr/local/bin:/usr/bin:/bin -entrypoint "[\"/usr/local/bin/${name}\"]"
done

# kube-proxy programs the node's iptables/nftables by running those tools,
# so its image carries them (as upstream's distroless-iptables base does),
# from a Debian minbase.
iptables_packages=(iptables nftables conntrack ipset kmod)
iptables_key="$(hash_inputs "${DEBIAN_SUITE}" "${DEBIAN_MIRROR}" "${iptables_packages[*]}")"
iptables_tar="${BALLAST_KIND_CACHE}/debootstrap-${DEBIAN_SUITE}-iptables-${iptables_key}.tar"
if [[ ! -f "${iptables_tar}" ]]; then
  log "debootstrap ${DEBIAN_SUITE} minbase with ${iptables_packages[*]} for kube-proxy (about a minute) ..."
  start=${SECONDS}
  debootstrap --variant=minbase --include="$(IFS=,; echo "${iptables_packages[*]}")" \
    "${DEBIAN_SUITE}" "${work}/iptables" "${DEBIAN_MIRROR}" >"${work}/debootstrap.log" 2>&1 ||
    { tail -30 "${work}/debootstrap.log" >&2; exit 1; }
  rm -rf "${work}"/iptables/var/lib/apt/lists/* "${work}"/iptables/var/cache/apt/*.bin \
    "${work}"/iptables/usr/share/doc/* "${work}"/iptables/usr/share/man/* "${work}"/iptables/usr/share/locale/*
  tar --numeric-owner -C "${work}/iptables" -cf "${iptables_tar}.tmp" .
  mv "${iptables_tar}.tmp" "${iptables_tar}"
  rm -rf "${work}/iptables"
  log "debootstrap for kube-proxy: done in $((SECONDS - start))s"
fi
emit "registry.k8s.io/kube-proxy:$(tag_of registry.k8s.io/kube-proxy)" "$(hash_inputs "${script_key}" "${version}" "${iptables_key}")" \
  -base-tar "${iptables_tar}" -add "${bin[kube-proxy]}:/usr/local/bin/kube-proxy:0755" \
  -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin -entrypoint '["/usr/local/bin/kube-proxy"]'

# etcd for the control plane: Ballast by default. kubeadm's static pod runs
# `etcd --flags` as root with its data in a root-owned hostPath, so unlike
# the member image (hack/image/build.sh) this one runs as root.
etcd_tag="registry.k8s.io/etcd:$(tag_of registry.k8s.io/etcd)"
case "${KIND_ETCD:-ballast}" in
  ballast)
    ballast="${kind_root}/bin/ballast"
    [[ -x "${ballast}" ]] || { echo "hack/kind/images.sh: ${ballast} is missing (make build)" >&2; exit 1; }
    # Keyed by the binary itself: the control plane runs the Ballast of the
    # working tree, not of the last commit.
    emit "${etcd_tag}" "$(hash_inputs "${script_key}" "${ballast}")" \
      -add "${ballast}:/usr/local/bin/ballast:0755" -symlink /usr/local/bin/etcd=ballast $(common_etc) \
      -env PATH=/usr/local/bin:/usr/bin:/bin -entrypoint '["/usr/local/bin/etcd"]'
    ;;
  etcd)
    "${kind_root}/hack/tools.sh" etcd >&2
    etcd="$(readlink -f "${kind_root}/bin/etcd")"
    emit "${etcd_tag}" "$(hash_inputs "${script_key}" "${etcd}")" \
      -add "${etcd}:/usr/local/bin/etcd:0755" $(common_etc) \
      -env PATH=/usr/local/bin:/usr/bin:/bin -entrypoint '["/usr/local/bin/etcd"]'
    ;;
  *)
    echo "hack/kind/images.sh: KIND_ETCD must be ballast or etcd" >&2
    exit 2
    ;;
esac

# CoreDNS, at the version kubeadm deploys.
coredns_ref="registry.k8s.io/coredns/coredns"
coredns_tag="$(tag_of "${coredns_ref}")"
coredns_pin="$(awk '$1 == "github.com/coredns/coredns" && $2 ~ /^v[0-9]/ { print $2; exit }' "${kind_here}/coredns/go.mod")"
if [[ "${coredns_pin}" != "${coredns_tag}" ]]; then
  echo "hack/kind/images.sh: kubeadm deploys CoreDNS ${coredns_tag}, hack/kind/coredns/go.mod pins ${coredns_pin}" >&2
  exit 1
fi
coredns_bin="${BALLAST_TOOLS_CACHE}/coredns-${coredns_pin}"
if [[ ! -x "${coredns_bin}" ]]; then
  timed "building coredns ${coredns_pin}" bash -c 'cd "$1" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$2.tmp" github.com/coredns/coredns' \
    _ "${kind_here}/coredns" "${coredns_bin}"
  mv "${coredns_bin}.tmp" "${coredns_bin}"
fi
# Root: kubeadm's Deployment adds only NET_BIND_SERVICE to bind port 53, which
# a non-root process would hold only with file capabilities on the binary.
emit "${coredns_ref}:${coredns_tag}" "$(hash_inputs "${script_key}" "${coredns_pin}")" \
  -add "${coredns_bin}:/coredns:0755" $(common_etc) -expose 53/udp -expose 53/tcp -entrypoint '["/coredns"]'

# local-path-provisioner, the default StorageClass.
lpp_pin="$(awk '$1 == "github.com/rancher/local-path-provisioner" && $2 ~ /^v[0-9]/ { print $2; exit }' "${kind_here}/localpath/go.mod")"
lpp_bin="${BALLAST_TOOLS_CACHE}/local-path-provisioner-${lpp_pin}"
if [[ ! -x "${lpp_bin}" ]]; then
  timed "building local-path-provisioner ${lpp_pin}" bash -c 'cd "$1" && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$2.tmp" github.com/rancher/local-path-provisioner' \
    _ "${kind_here}/localpath" "${lpp_bin}"
  mv "${lpp_bin}.tmp" "${lpp_bin}"
fi
emit "${LOCAL_PATH_PROVISIONER_IMAGE}:${lpp_pin}" "$(hash_inputs "${script_key}" "${lpp_pin}")" \
  -add "${lpp_bin}:/usr/local/bin/local-path-provisioner:0755" $(common_etc) \
  -env PATH=/usr/local/bin:/usr/bin:/bin -entrypoint '["/usr/local/bin/local-path-provisioner"]'

# A shell and coreutils for helper pods: Debian's statically linked busybox.
busybox_candidate() { apt-cache show --no-all-versions busybox-static 2>/dev/null | awk '/^Version:/ { print $2; exit }'; }
busybox_version="$(busybox_candidate)"
if [[ -z "${busybox_version}" && $(id -u) == 0 ]]; then
  apt-get update -qq >/dev/null # package lists missing or stale
  busybox_version="$(busybox_candidate)"
fi
busybox_tag="$(sed -E 's/^[0-9]+://; s/[^A-Za-z0-9_.-]/_/g' <<<"${busybox_version}")"
busybox_deb="${BALLAST_KIND_CACHE}/busybox-static_${busybox_tag}.deb"
if [[ ! -f "${busybox_deb}" ]]; then
  [[ -n "${busybox_version}" ]] || { echo "hack/kind/images.sh: apt-cache knows no busybox-static (apt-get update?)" >&2; exit 1; }
  (cd "${work}" && apt-get download "busybox-static=${busybox_version}" >/dev/null)
  mv "${work}"/busybox-static_*.deb "${busybox_deb}"
fi
dpkg-deb -x "${busybox_deb}" "${work}/busybox"
helper=(-add "${work}/busybox/bin/busybox:/bin/busybox:0755")
for applet in $("${work}/busybox/bin/busybox" --list); do
  [[ "${applet}" == busybox ]] && continue
  helper+=(-symlink "/bin/${applet}=busybox")
done
emit "${LOCAL_PATH_HELPER_IMAGE}:${busybox_tag}" "$(hash_inputs "${script_key}" "${busybox_tag}")" \
  "${helper[@]}" $(common_etc) -env PATH=/bin -entrypoint '["/bin/sh"]'
