#!/usr/bin/env bash
# Runs Spindle's whole test suite: the README's test command (CI runs it too).
#
# It installs and starts what the tests need when it is missing, so it passes on a fresh
# Debian machine (run as root, or with sudo available): NATS with JetStream on
# 127.0.0.1:4222, PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`), Chromium, and
# a Docker engine with compose and mmdebstrap (the compose test needs root).
# Without them the service tests skip with a printed reason; under CI=true they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq && apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_postgres() {
  if [ -z "$SUDO" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

if ! listening 4222; then
  command -v nats-server >/dev/null 2>&1 || install nats-server
  mkdir -p /tmp/spindle-nats
  $SUDO start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /tmp/spindle-nats -l /tmp/spindle-nats/nats.log
  for _ in $(seq 50); do listening 4222 && break; sleep 0.2; done
fi

if ! listening 5432; then
  command -v pg_ctlcluster >/dev/null 2>&1 || install postgresql
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  # The tests connect as postgres@127.0.0.1 without a password.
  grep -q "spindle tests" "$hba" || \
    $SUDO sed -i "1i host all all 127.0.0.1/32 trust # spindle tests" "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 50); do listening 5432 && break; sleep 0.2; done
  as_postgres psql -qtc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 || \
    as_postgres createdb test
fi

[ -x /usr/bin/chromium ] || install chromium

# The compose test (tests/compose_run.rs) runs docker-compose.yml on a Docker engine, with
# images it builds from Debian's packages (mmdebstrap), since no image registry is reachable.
command -v dockerd >/dev/null 2>&1 || install docker.io
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || \
  install docker-compose
command -v mmdebstrap >/dev/null 2>&1 || install mmdebstrap
if ! $SUDO docker info >/dev/null 2>&1; then
  $SUDO start-stop-daemon --start --oknodo --background --exec "$(command -v dockerd)" -- \
    --log-level=warn -p /var/run/docker.pid
  for _ in $(seq 100); do $SUDO docker info >/dev/null 2>&1 && break; sleep 0.3; done
fi

# A clean clone gains nothing from incremental caches, and they double the target size.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

# Formatting and lints are part of the suite.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

cargo test --workspace --all-targets "$@"
