#!/bin/sh
# Writes the image's /etc files (passwd, group, nsswitch.conf) into DIR.
# Shared by hack/image/build.sh (no registry) and the Dockerfile (with one),
# so that both images have the same users. POSIX sh: the Dockerfile's build
# stage runs it too.
#
# Usage: hack/image/layout.sh DIR
set -eu

dir="${1:?usage: layout.sh DIR}"
mkdir -p "${dir}"

# nonroot (65532) is the user the image runs as, the same UID distroless
# images use, so volume ownership and securityContext.runAsUser carry over.
cat >"${dir}/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"${dir}/group" <<'EOF'
root:x:0:
nonroot:x:65532:
EOF
# Go's resolver reads this: look in /etc/hosts before DNS.
cat >"${dir}/nsswitch.conf" <<'EOF'
hosts: files dns
EOF
