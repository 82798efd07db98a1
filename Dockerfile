# The Ballast image, for machines that can pull golang:1.26. Where nothing
# can be pulled, `make image` builds the same image (same files, users,
# entrypoint and labels; see hack/image/build.sh) from bin/ballast.
#
# Build: make docker-build (or docker build -t ballast .)
# Run:   docker run -p 2379:2379 -v ballast-data:/var/lib/ballast ballast \
#          node --name=ballast-0 --data-dir=/var/lib/ballast \
#          --listen-client-urls=http://0.0.0.0:2379 --advertise-client-urls=http://127.0.0.1:2379

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits do not refetch modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
ARG GIT_SHA=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/ballastdb/ballast/node/version.Version=${VERSION} -X github.com/ballastdb/ballast/node/version.GitSHA=${GIT_SHA}" \
      -o /out/usr/local/bin/ballast . \
 && ln -s ballast /out/usr/local/bin/etcd \
 && ln -s usr/local/bin/ballast /out/ballast \
 && sh hack/image/layout.sh /out/etc \
 && mkdir -p /out/etc/ssl/certs /out/tmp /owned/nonroot /owned/data \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && chmod 1777 /out/tmp

FROM scratch
ARG VERSION=0.1.0-dev
ARG GIT_SHA=unknown
COPY --from=build /out/ /
# The data directory must exist and belong to the runtime user so a fresh
# named volume inherits a writable owner.
COPY --from=build --chown=65532:65532 /owned/nonroot /home/nonroot
COPY --from=build --chown=65532:65532 /owned/data /var/lib/ballast
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title=ballast \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.revision=${GIT_SHA} \
      org.opencontainers.image.source=https://github.com/ballastdb/ballast
USER 65532:65532
# Working in the volume puts the default data dir (default.etcd) there too.
WORKDIR /var/lib/ballast
VOLUME ["/var/lib/ballast"]
EXPOSE 2379 2380
ENTRYPOINT ["/usr/local/bin/ballast"]
CMD ["node"]
