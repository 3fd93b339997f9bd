#!/usr/bin/env bash
# Builds, without an image registry, the images the compose test (tests/compose_run.rs) runs
# docker-compose.yml with, and prints them as NAME=IMAGE lines for the override file
# tests/compose/docker-compose.test.yml:
#
#   base      Debian bookworm made from Debian's packages with mmdebstrap (the apt variant, what
#             debian:bookworm-slim holds) and loaded with `docker import`; cached under a tag
#             keyed by its suite, variant, package list, apt sources and this script.
#   SPINDLE_TEST_IMAGE           the Dockerfile's `runtime` stage on that base, with BINARY (built
#                                on the host) instead of the Dockerfile's compile stage; tagged TAG.
#   SPINDLE_TEST_NATS_IMAGE      Debian's nats-server on the base  } tests/compose/services.Dockerfile,
#   SPINDLE_TEST_POSTGRES_IMAGE  Debian's postgresql on the base   } cached, keyed by base and files.
#
# Usage: scripts/compose-images.sh BINARY TAG     (as root; needs docker and mmdebstrap)
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
[ $# -eq 2 ] || { echo "usage: $0 BINARY TAG" >&2; exit 2; }
binary=$1 tag=$2

SUITE=bookworm
VARIANT=apt
PACKAGES=""   # comma-separated extra packages of the base (the images add their own)

# BuildKit runs the Dockerfile's stages; a Docker 23+ client needs the buildx plugin for it,
# an older one (Debian's docker.io 20.10) has it built in. Take the first client that can.
docker=""
for candidate in $(type -ap docker); do
  if "$candidate" buildx version >/dev/null 2>&1; then docker=$candidate; break; fi
  major=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
  if [ -n "$major" ] && [ "$major" -lt 23 ] 2>/dev/null; then docker=$candidate; break; fi
done
[ -n "$docker" ] || { echo "no docker client with BuildKit (install docker.io or buildx)" >&2; exit 1; }
export DOCKER_BUILDKIT=1

# The host's apt sources and its settings for them (a snapshot mirror's old Release files).
sources=""
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
  if [ -s "$f" ] && grep -qv '^\s*#' "$f"; then sources=$f; break; fi
done
aptopts=()
while read -r opt; do aptopts+=("--aptopt=$opt"); done < <(
  apt-config dump 2>/dev/null | grep -E '^Acquire::Check-(Valid-Until|Date) "false";$' || true)

# As in Debian's official images, apt leaves no downloaded packages nor caches in the layers
# the images add.
clean='/var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin'
DOCKER_CLEAN="DPkg::Post-Invoke { \"rm -f $clean || true\"; };
APT::Update::Post-Invoke { \"rm -f $clean || true\"; };
Dir::Cache::pkgcache \"\";
Dir::Cache::srcpkgcache \"\";"

hash() { sha256sum | cut -c1-16; }
# The base's key: its package list and apt sources, and this script (how it is made).
key=$({ echo "$SUITE $VARIANT $PACKAGES ${aptopts[*]}"; cat "$self"
  [ -z "$sources" ] || cat "$sources"; } | hash)
base=spindle-test/bookworm:$key
if ! "$docker" image inspect "$base" >/dev/null 2>&1; then
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
  echo "building $base with mmdebstrap (once per package list)" >&2
  start=$SECONDS
  # A whole tarball first: a failed run must not leave a partial base under the cached tag.
  work=$(mktemp -d)
  echo "$DOCKER_CLEAN" > "$work/docker-clean"
  if ! mmdebstrap --quiet --variant="$VARIANT" ${PACKAGES:+--include="$PACKAGES"} \
      "${aptopts[@]}" --customize-hook="copy-in $work/docker-clean /etc/apt/apt.conf.d" \
      --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
      "$SUITE" "$work/rootfs.tar" ${sources:+"$sources"}; then
    rm -rf "$work"
    echo "mmdebstrap failed" >&2
    exit 1
  fi
  "$docker" import -c 'CMD ["bash"]' "$work/rootfs.tar" "$base" >/dev/null
  rm -rf "$work"
  echo "built $base in $((SECONDS - start)) s" >&2
fi

services_key=$({ echo "$key"; cat tests/compose/services.Dockerfile tests/compose/postgres-entrypoint.sh; } | hash)
for service in nats postgres; do
  image=spindle-test/$service:$services_key
  if ! "$docker" image inspect "$image" >/dev/null 2>&1; then
    "$docker" build --quiet --build-arg BASE="$base" --target "$service" -t "$image" \
      -f tests/compose/services.Dockerfile tests/compose >&2
  fi
  echo "SPINDLE_TEST_$(echo "$service" | tr a-z A-Z)_IMAGE=$image"
done

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/spindle"
"$docker" build --quiet --build-arg SPINDLE_BINARY=prebuilt --build-arg DEBIAN_IMAGE="$base" \
  --target runtime -t "$tag" -f Dockerfile "$context" >&2
echo "SPINDLE_TEST_IMAGE=$tag"
