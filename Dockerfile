# syntax=docker/dockerfile:1
#
# The otelcol-ebpf image: the distribution built with ocb exactly as
# `make build` does, copied onto a minimal static runtime. The binary is pure
# Go (CGO_ENABLED=0): the eBPF programs are compiled ahead of time and
# committed (bpf/*_bpfel.o, embedded in the binary), for amd64 and arm64.
#
#   docker build -t REGISTRY/otelcol-ebpf:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/otelcol-ebpf:0.1.0 --push .
#
# Not built on the project's own machines: they have no Docker engine. What is
# built and tested there is `make build` (the same ocb and configuration) and
# the Kubernetes manifests that run this image (deploy/).

ARG GO_VERSION=1.26.8

# Build on the builder's own platform and cross-compile for the target's.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG OCB_VERSION=v0.161.0
ARG TARGETOS
ARG TARGETARCH
RUN GOBIN=/usr/local/bin go install go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}
WORKDIR /src
# Dependencies in a layer of their own, reused while go.mod and go.sum stay.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# builder-config.yaml builds into _build/ and replaces the receiver's module
# with this checkout (../ from _build).
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} builder --config builder-config.yaml

# No shell, no package manager: the collector binary and its default
# configuration (config.yaml, the one `make run` uses).
FROM gcr.io/distroless/static-debian12
COPY --from=build /src/_build/otelcol-ebpf /otelcol-ebpf
COPY config.yaml /etc/otelcol-ebpf/config.yaml
# Root by default: the agent needs uid 0 for its added capabilities to be
# effective (deploy/README.md); the gateway's pod spec runs it as 65534.
USER 0:0
EXPOSE 4317 4318 13133
ENTRYPOINT ["/otelcol-ebpf"]
CMD ["--config=/etc/otelcol-ebpf/config.yaml"]
