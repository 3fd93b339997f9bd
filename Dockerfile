# syntax=docker/dockerfile:1
# Spindle: one image with the `spindle` binary; every role is a command of it.
#
#   docker build -t spindle .                              # plain HTTP fetchers and the other roles
#   docker build -t spindle:chromium --target chromium .   # adds Debian's Chromium for fetch = "js"
#
# `runtime` is the last stage, so a build without --target makes the small image.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds, so editing
# Spindle's code rebuilds only Spindle.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin spindle \
    && strip target/release/spindle \
    && cp target/release/spindle /usr/local/bin/spindle

FROM debian:bookworm-slim AS base
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/spindle --create-home spindle
COPY --from=build /usr/local/bin/spindle /usr/local/bin/spindle
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
