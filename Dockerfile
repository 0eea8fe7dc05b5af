# syntax=docker/dockerfile:1
# enrichproxy: a static binary on distroless, non-root, read-only friendly.
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t enrichproxy .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# CI (.ci/build-check) reads and runs this exact line: keep it on one line.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/proxy ./cmd/proxy

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="enrichproxy" \
      org.opencontainers.image.description="One internal endpoint for the Enrow and eCore enrichment APIs" \
      org.opencontainers.image.source="https://github.com/enrichproxy/enrichproxy"
COPY --from=build /out/proxy /proxy
# In a container the proxy listens on every interface; the pod network decides who reaches it.
ENV PROXY_LISTEN=0.0.0.0:8080 \
    PROXY_ADMIN_LISTEN=0.0.0.0:9090
USER 65532:65532
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/proxy", "healthcheck"]
ENTRYPOINT ["/proxy"]
