#!/usr/bin/env bash
# Make a local Debian bookworm base image with podman, for machines that reach no image registry.
#
#   deploy/base-image.sh [IMAGE]        # default localhost/pod-gateway-base:bookworm; prints the name
#
# The root file system is made with debootstrap from the apt mirror this machine is configured with and
# kept as a tarball in the cache directory (POD_IMAGE_CACHE, default ~/.cache/pod-gateway), so a rerun
# is quick: an image already in podman's store is reused, a cached tarball is imported again.
set -euo pipefail

image="${1:-localhost/pod-gateway-base:bookworm}"
cache="${POD_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pod-gateway}"
tarball="$cache/debian-bookworm-python3.tar"

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

mirror() {
  # The first Debian (not -security) URI in the apt sources, deb822 or one-line format.
  local uri
  uri="$(grep -rhoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+' \
           /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
         | grep -oE 'https?://[^[:space:]]+' | grep -v security | grep -E '/debian/?$' | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

if [[ ! -s "$tarball" ]]; then
  mkdir -p "$cache"
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  # python3 and its venv module are baked in, so the Dockerfile's apt step is skipped on this base.
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" "$(mirror)" >&2
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

podman import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >&2
echo "$image"
