# callfleet's images: the manager (default), the stream gateway and
# piopiy-sim, one command each, picked with the CMD build argument. Build from
# the repository root:
#
#   docker build -t ghcr.io/callfleet/manager:dev .
#   docker build --build-arg CMD=stream-gateway -t ghcr.io/callfleet/stream-gateway:dev .
#   docker build --build-arg CMD=piopiy-sim -t ghcr.io/callfleet/piopiy-sim:dev .
#
# The demo bot has its own: examples/bots/echo/Dockerfile.

FROM golang:1.26 AS build
ARG CMD=manager
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY pkg/ pkg/
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/app ./cmd/${CMD}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
