#!/usr/bin/env bash
# Builds the Ballast container image without pulling anything: the static
# bin/ballast (make build) plus a few files from this machine, written as a
# docker-archive by hack/image/mkimage and loaded into Docker. The layout is
# the one the Dockerfile builds where registries are reachable (both call
# hack/image/layout.sh), so either image runs the same manifests:
#
#   /usr/local/bin/ballast     the binary; ENTRYPOINT, CMD ["node"]
#   /usr/local/bin/etcd        -> ballast: invoked as etcd it is `ballast node`
#                              (kubeadm's etcd static pod runs `etcd ...`)
#   /ballast                   -> usr/local/bin/ballast (the operator's pods run /ballast node)
#   /etc/passwd, /etc/group    root and nonroot (65532), the user it runs as
#   /etc/ssl/certs/ca-certificates.crt   this machine's CA bundle
#   /var/lib/ballast           data volume and working directory, owned by 65532
#   /tmp                       1777
#
# Usage: hack/image/build.sh BINARY TAG [ARCHIVE]
#   Loads the image into Docker as TAG; with ARCHIVE, also keeps the
#   docker-archive there (for `kind load image-archive` or `ctr images import`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
binary="${1:?usage: build.sh BINARY TAG [ARCHIVE]}"
tag="${2:?usage: build.sh BINARY TAG [ARCHIVE]}"
archive="${3:-}"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

"${here}/layout.sh" "${work}/etc"

mkimage="${work}/mkimage"
(cd "${root}" && CGO_ENABLED=0 go build -o "${mkimage}" ./hack/image/mkimage)

version="$("${binary}" version | awk -F': ' '$1 == "Ballast Version" { print $2 }')"
sha="$("${binary}" version | awk -F': ' '$1 == "Git SHA" { print $2 }')"

out="${archive:-${work}/image.tar}"
args=(
  -o "${out}" -tag "${tag}"
  -add "${binary}:/usr/local/bin/ballast:0755"
  -symlink "/usr/local/bin/etcd=ballast"
  -symlink "/ballast=usr/local/bin/ballast"
  -add "${work}/etc/passwd:/etc/passwd:0644"
  -add "${work}/etc/group:/etc/group:0644"
  -add "${work}/etc/nsswitch.conf:/etc/nsswitch.conf:0644"
  -dir "/tmp:1777"
  -dir "/home/nonroot:0755:65532:65532"
  -dir "/var/lib/ballast:0755:65532:65532"
  -env "PATH=/usr/local/bin"
  -env "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
  -user "65532:65532"
  -workdir /var/lib/ballast
  -volume /var/lib/ballast
  -expose 2379/tcp -expose 2380/tcp
  -entrypoint '["/usr/local/bin/ballast"]'
  -cmd '["node"]'
  -label "org.opencontainers.image.title=ballast"
  -label "org.opencontainers.image.version=${version}"
  -label "org.opencontainers.image.revision=${sha}"
  -label "org.opencontainers.image.source=https://github.com/ballastdb/ballast"
)
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  args+=(-add "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:0644")
else
  echo "hack/image/build.sh: no /etc/ssl/certs/ca-certificates.crt here; the image has no CA bundle" >&2
fi
"${mkimage}" "${args[@]}"
previous="$(docker image inspect --format '{{.Id}}' "${tag}" 2>/dev/null || true)"
docker load -i "${out}"
# The image this tag named before is left without a name; remove it unless a
# container or another tag still uses it.
if [[ -n "${previous}" && "${previous}" != "$(docker image inspect --format '{{.Id}}' "${tag}")" ]]; then
  docker rmi "${previous}" >/dev/null 2>&1 || true
fi
