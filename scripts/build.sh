#!/usr/bin/env bash
# build.sh - builds the native libraries (build/lib) and publishes the kiln host (build/bin/kiln).
# Usage: scripts/build.sh [--no-bootstrap]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

[[ "${1:-}" == "--no-bootstrap" ]] || scripts/bootstrap.sh

jobs=$(nproc)
cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/cmake -j "$jobs"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet publish managed/Kiln.Cli/Kiln.Cli.csproj -c Release -o build/bin --nologo -v quiet
# scripts/kiln rebuilds only when a source is newer than this, the build's last write.
touch build/.built
echo "build: native libraries in build/lib, kiln in build/bin/kiln"
