# syntax=docker/dockerfile:1
#
# Latch container image: docker build -t latch --build-arg VERSION=$(git describe --always --dirty) .
# Run: docker run -p 127.0.0.1:8080:8080 -v latch-data:/data latch
# (or docker compose up -d; see "## Docker" in README.md).

# --- build: cgo is required for SQLite (mattn/go-sqlite3), so the binary is
# linked against glibc and the final image must have glibc too.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# The latch build flags below are also .ci/run's build step; deploy's tests
# fail when the two differ.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/latch . \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/healthcheck ./deploy/healthcheck \
 && /out/latch version \
 && mkdir -p /out/data

# --- final: distroless base has glibc, CA certificates and tzdata, and no
# shell or package manager.
FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/latch /usr/local/bin/latch
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
COPY deploy/config.yaml /etc/latch/config.yaml
# /data holds the SQLite database; owned by the non-root user so that a new
# named volume mounted there inherits that ownership.
COPY --from=build --chown=65532:65532 /out/data /data
# The CLI in the container finds /etc/latch/config.yaml without --config:
# docker compose exec latch latch clients list
WORKDIR /etc/latch
USER 65532:65532
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/healthcheck"]
ENTRYPOINT ["/usr/local/bin/latch"]
CMD ["serve", "--config", "/etc/latch/config.yaml"]
