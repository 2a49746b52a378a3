#!/usr/bin/env bash
# Ensures the Debian packages sluice's tests and demo use are installed (system-wide: apt has no
# per-project prefix). Installs only what is missing, so a warm machine spends no time here.
set -euo pipefail
# `--only PKG…` installs just those (what `make demo` needs); otherwise everything below plus any arguments.
PACKAGES=(git curl iptables iproute2 ca-certificates dnsutils python3-requests util-linux tinyproxy squid wrk crun
  runc containernetworking-plugins busybox-static gcc libc6-dev)  # the second line: e2e/cluster's node and agent image
if [[ ${1:-} == --only ]]; then
  shift
  PACKAGES=()
fi
missing=()
for pkg in "${PACKAGES[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
echo "[tools] apt-get install ${missing[*]}" >&2
SUDO=(); [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
