#!/usr/bin/env bash
# bootstrap.sh - installs what Kiln needs to build and test on Debian 12 (as root); safe to re-run:
# apt runs only when a package is missing. Usage: scripts/bootstrap.sh [--bench]
set -euo pipefail

# slurmctld, slurmd, slurm-client and munge: the end-to-end test's loopback Slurm (scripts/slurm/local-cluster.sh).
packages=(cmake make g++ googletest libgtest-dev libclang1-14 libclang-common-14-dev fonts-dejavu-core chromium
          clang-14 nvidia-cuda-toolkit hipcc libamdhip64-dev libopenblas-dev librocm-smi-dev slurmctld slurmd slurm-client munge
          iproute2 iptables libibverbs-dev)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(memtester stress-ng likwid hyperfine time iperf3)
fi

# nvidia-cuda-toolkit lives in Debian's non-free component: a second sources file with the
# machine's own Debian URIs adds it (CI compiles the CUDA plugin on every run).
nonfree=/etc/apt/sources.list.d/kiln-nonfree.sources
if [[ ! -f $nonfree && -f /etc/apt/sources.list.d/debian.sources && -w /etc/apt/sources.list.d ]]; then
  uris=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  if [[ -n "$uris" && -n "$suite" ]]; then
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uris" "$suite" "$suite" > "$nonfree"
  fi
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "bootstrap: the .NET 10 SDK (dotnet) is not on PATH; install it, then re-run" >&2
  exit 2
fi
if ! dotnet --list-sdks | grep -q '^10\.'; then
  echo "bootstrap: a .NET 10 SDK is required; found: $(dotnet --list-sdks | tr '\n' ' ')" >&2
  exit 2
fi
