#!/usr/bin/env bash
# Builds the node base image: a Debian root file system (debootstrap, from
# Debian's own packages) with systemd, containerd, runc, the CNI plugins and
# the tools kubeadm and the kubelet call, plus the node's configuration
# (hack/kind/node/files). It is the equivalent of kind's kindest/base, made
# without pulling any image. Needs root (debootstrap). debootstrap takes 1-3
# minutes and is cached by suite, mirror and package list; the image by all
# of its inputs.
#
# Usage: hack/kind/base-image.sh   (prints the image name)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Packages, grouped as kind groups them: systemd; what the kubelet, kubeadm
# and kube-proxy run on the node; the container runtime; tools kind and
# people use in a node.
packages=(
  systemd systemd-sysv dbus
  conntrack iptables nftables iproute2 ethtool util-linux mount kmod ebtables socat
  containerd runc containernetworking-plugins libseccomp2
  bash ca-certificates procps less
)

key="$(hash_inputs "${DEBIAN_SUITE}" "${DEBIAN_MIRROR}" "${packages[*]}" \
  "${kind_here}/node/files" "${BASH_SOURCE[0]}" "${kind_root}/hack/image/mkimage")"
image="ballast-kind-base:${DEBIAN_SUITE}-${key}"
archive="${BALLAST_KIND_CACHE}/base-${DEBIAN_SUITE}-${key}.tar"

if docker image inspect "${image}" >/dev/null 2>&1; then
  echo "${image}"
  exit 0
fi
if [[ ! -f "${archive}" ]]; then
  mkdir -p "${BALLAST_KIND_CACHE}"
  work="$(mktemp -d "${BALLAST_KIND_CACHE}/base-work.XXXXXX")"
  trap 'rm -rf "${work}"' EXIT
  rootfs="${work}/rootfs"

  # debootstrap's output depends only on the suite, mirror and packages; it
  # is cached on its own so that editing the node's files (below) does not
  # download and install Debian again.
  raw="${BALLAST_KIND_CACHE}/debootstrap-${DEBIAN_SUITE}-$(hash_inputs "${DEBIAN_SUITE}" "${DEBIAN_MIRROR}" "${packages[*]}").tar"
  if [[ ! -f "${raw}" ]]; then
    if [[ $(id -u) != 0 ]]; then
      echo "hack/kind/base-image.sh: debootstrap needs root" >&2
      exit 1
    fi
    ensure_debs debootstrap:debootstrap
    log "debootstrap ${DEBIAN_SUITE} with ${#packages[@]} packages (about 2 minutes) ..."
    start=${SECONDS}
    debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
      "${DEBIAN_SUITE}" "${rootfs}" "${DEBIAN_MIRROR}" >"${work}/debootstrap.log" 2>&1 ||
      { tail -30 "${work}/debootstrap.log" >&2; exit 1; }
    rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/*.bin "${rootfs}"/usr/share/doc/* \
      "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/locale/*
    tar --numeric-owner -C "${rootfs}" -cf "${raw}.tmp" .
    mv "${raw}.tmp" "${raw}"
    rm -rf "${rootfs}"
    log "debootstrap: done in $((SECONDS - start))s"
  fi
  mkdir -p "${rootfs}"
  tar --numeric-owner -C "${rootfs}" -xf "${raw}"

  # Only what a node needs starts at boot: units the packages enabled are
  # removed (gettys, timers, udev), then containerd and the kubelet are
  # enabled. journald must not read the host's kernel log.
  rm -f "${rootfs}"/lib/systemd/system/multi-user.target.wants/* \
    "${rootfs}"/etc/systemd/system/*.wants/* \
    "${rootfs}"/lib/systemd/system/local-fs.target.wants/* \
    "${rootfs}"/lib/systemd/system/sockets.target.wants/*udev* \
    "${rootfs}"/lib/systemd/system/sockets.target.wants/*initctl* \
    "${rootfs}"/lib/systemd/system/sysinit.target.wants/systemd-udev* \
    "${rootfs}"/lib/systemd/system/getty.target.wants/* 2>/dev/null || true
  echo "ReadKMsg=no" >>"${rootfs}/etc/systemd/journald.conf"
  cp -a "${kind_here}/node/files/." "${rootfs}/"
  chmod 0755 "${rootfs}/usr/local/bin/entrypoint"
  systemctl --root="${rootfs}" enable containerd.service kubelet.service >/dev/null 2>&1
  mkdir -p "${rootfs}/etc/kubernetes/manifests" "${rootfs}/etc/cni/net.d" "${rootfs}/kind/manifests" \
    "${rootfs}/var/lib/kubelet"
  # A node's identity comes from the entrypoint, not from the image.
  : >"${rootfs}/etc/machine-id"

  timed "packing the root file system" tar --numeric-owner -C "${rootfs}" -cf "${work}/rootfs.tar" .
  mkimage="$(mkimage_bin)"
  timed "writing ${image}" "${mkimage}" -o "${archive}.tmp" -tag "${image}" -base-tar "${work}/rootfs.tar" \
    -env container=docker \
    -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    -stop-signal SIGRTMIN+3 \
    -entrypoint '["/usr/local/bin/entrypoint", "/sbin/init"]' >/dev/null
  mv "${archive}.tmp" "${archive}"
fi
timed "docker load ${image}" docker load -i "${archive}" >/dev/null
prune_images ballast-kind-base "${image#*:}"
for old in "${BALLAST_KIND_CACHE}"/base-"${DEBIAN_SUITE}"-*.tar; do
  [[ -e "${old}" && "${old}" != "${archive}" ]] && rm -f "${old}"
done
echo "${image}"
