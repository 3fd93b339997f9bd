# Spindle: one image with the `spindle` binary; every role is a command of it.
#
#   docker build -t spindle .                              # plain HTTP fetchers and the other roles
#   docker build -t spindle:chromium --target chromium .   # adds Debian's Chromium for fetch = "js"
#
# `runtime` is the last stage, so a build without --target makes the small image. It needs
# BuildKit (Docker 23+, or DOCKER_BUILDKIT=1) and uses its built-in Dockerfile frontend, so
# nothing but the base images below is pulled.
#
# A binary built elsewhere (the compose test builds it on the host) goes into the same
# stages without compiling here: put it in an otherwise empty folder as `spindle` and run
#
#   docker build --build-arg SPINDLE_BINARY=prebuilt --target runtime -f Dockerfile FOLDER
#
# DEBIAN_IMAGE and RUST_IMAGE name the images the stages start from (the compose test uses a
# Debian bookworm made locally, scripts/compose-images.sh).
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-bookworm
# `build` compiles the binary in RUST_IMAGE; `prebuilt` takes `spindle` from the context.
ARG SPINDLE_BINARY=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds, so editing
# Spindle's code rebuilds only Spindle.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin spindle \
    && strip target/release/spindle \
    && cp target/release/spindle /usr/local/bin/spindle

FROM scratch AS prebuilt
COPY spindle /usr/local/bin/spindle

# The one stage the rest copy the binary from: BuildKit builds only the stage named here.
FROM ${SPINDLE_BINARY} AS binary

FROM ${DEBIAN_IMAGE} AS base
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/spindle --create-home spindle
COPY --from=binary /usr/local/bin/spindle /usr/local/bin/spindle
WORKDIR /var/lib/spindle
ENTRYPOINT ["spindle"]
CMD ["all", "--data", "/var/lib/spindle/data", "--bind", "0.0.0.0:5000"]

FROM base AS chromium
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
USER spindle

FROM base AS runtime
USER spindle
