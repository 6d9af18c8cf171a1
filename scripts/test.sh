#!/usr/bin/env bash
# test.sh - installs, builds and runs every test: native (GoogleTest via CTest) and managed (NUnit,
# unit and end to end). Ends with "N passed, N failed, N skipped" over both (scripts/test-summary.sh);
# exits 1 on any failure, or when fewer tests ran than tests/test-floor.txt requires.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

scripts/build.sh || { echo "test: build failed"; echo "0 passed, 1 failed"; exit 1; }

results="$root/build/test-results"
rm -rf "$results"
mkdir -p "$results"

ctest --test-dir build/cmake --output-on-failure --timeout 300 --output-junit "$results/native.xml"
native_rc=$?

# A real Slurm on loopback for the end-to-end test (root only: slurmd runs jobs as their users; as
# another user SlurmEndToEndTests is skipped and says why). Stopped however the tests end.
slurm_dir="$root/build/slurm-cluster"
if [[ $(id -u) -eq 0 ]]; then
  if KILN_SLURM_PORT=${KILN_SLURM_PORT:-26817} scripts/slurm/local-cluster.sh start "$slurm_dir"; then
    export KILN_TEST_SLURM_DIR="$slurm_dir"
    trap 'scripts/slurm/local-cluster.sh stop "$slurm_dir" >/dev/null' EXIT
  else
    echo "test: the loopback Slurm did not start (logs in $slurm_dir/log); SlurmEndToEndTests will start its own and report why"
  fi
fi

dotnet test tests/Kiln.Tests/Kiln.Tests.csproj -c Release --nologo \
  --logger "trx;LogFileName=managed.trx" --logger "console;verbosity=normal" --results-directory "$results"
managed_rc=$?

# Counts both result files (inconclusive and ignored managed tests as skipped) and fails a run in
# which fewer tests ran than tests/test-floor.txt says must (a suite that was not discovered).
exec scripts/test-summary.sh "$results" "$root/tests/test-floor.txt" "$native_rc" "$managed_rc"
