# syntax=docker/dockerfile:1
# bg and the compose demo backend, from one build stage.
#   docker build -t bg .                          # bg (the default, last stage)
#   docker build --target demo-app -t bg-demo .   # e2e/cmd/demo-app
# Every base image is pinned to an exact version (e2e/compose_test.go checks).

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not in the build context, so Go records no revision: pass one,
# e.g. --build-arg VERSION=$(git describe --always --dirty); bg --version prints it.
ARG VERSION=""
RUN go build -ldflags="-s -w -X github.com/bgctl/bg/cli/commands.Version=${VERSION}" -o /out/bg ./cli/bg \
 && go build -ldflags="-s -w" -o /out/demo-app ./e2e/cmd/demo-app

FROM debian:12.11-slim AS demo-app
COPY --from=build /out/demo-app /usr/local/bin/demo-app
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/demo-app"]

FROM debian:12.11-slim AS bg
COPY --from=build /out/bg /usr/local/bin/bg
USER 65532:65532
# xDS (ADS gRPC) and the admin API.
EXPOSE 18000 9090
ENTRYPOINT ["/usr/local/bin/bg"]
CMD ["serve", "--config", "/etc/bg/bg.yaml"]
