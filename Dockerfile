# syntax=docker/dockerfile:1
# The hospital-erp image: one static binary on an empty base, run as the
# numeric non-root user 65532 with a read-only root filesystem (it writes
# nothing). The same image runs the backend (api), the frontend (web) and the
# migration Job (migrate). Build: make image (docker or podman). Without a
# container engine (CI): make image-oci builds the same layout with
# tools/ociimage.

FROM docker.io/library/golang:1.26.8-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/hospital-erp ./cmd/hospital-erp
# A passwd entry for the numeric user (the pods set runAsUser 65532).
# Everything read-only to that user; root owns it.
RUN mkdir -p /out/etc/ssl/certs \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && chmod 0444 /out/etc/passwd /out/etc/group /out/etc/ssl/certs/ca-certificates.crt \
 && chmod 0555 /out/etc /out/etc/ssl /out/etc/ssl/certs /out/hospital-erp

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hospital-erp" \
      org.opencontainers.image.source="https://github.com/hospital-erp/hospital-erp" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/etc/ /etc/
COPY --from=build /out/hospital-erp /hospital-erp
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 3000 9464
ENTRYPOINT ["/hospital-erp"]
CMD ["api"]
