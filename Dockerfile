# Spindle: one image with the `spindle` binary; every role is a command of it.
#
#   docker build -t spindle .                              # plain HTTP fetchers and the other roles
#   docker build -t spindle:chromium --target chromium .   # adds Debian's Chromium for fetch = "js"

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so editing Spindle's code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY common/Cargo.toml common/
COPY scheduler/Cargo.toml scheduler/
COPY fetcher/Cargo.toml fetcher/
COPY processor/Cargo.toml processor/
COPY web-ui/Cargo.toml web-ui/
COPY . .
RUN cargo build --release --locked --bin spindle \
    && strip target/release/spindle

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/spindle --create-home spindle
COPY --from=build /src/target/release/spindle /usr/local/bin/spindle
USER spindle
WORKDIR /var/lib/spindle
ENTRYPOINT ["spindle"]
CMD ["all", "--data", "/var/lib/spindle/data", "--bind", "0.0.0.0:5000"]

FROM runtime AS chromium
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
USER spindle
