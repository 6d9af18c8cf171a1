#!/usr/bin/env bash
# test.sh - installs, builds and runs every test: native (GoogleTest via CTest) and managed (NUnit,
# unit and end to end). Ends with "N passed, N failed, N skipped" over both; exits 1 on any failure.
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

# attr FILE NAME: the first value of attribute NAME in FILE (0 when absent).
attr() { grep -o -m1 "$2=\"[0-9]*\"" "$1" 2>/dev/null | head -1 | grep -o '[0-9]*' || echo 0; }

n_total=$(attr "$results/native.xml" tests)
n_failed=$(( $(attr "$results/native.xml" failures) + $(attr "$results/native.xml" errors) ))
n_skipped=$(( $(attr "$results/native.xml" skipped) + $(attr "$results/native.xml" disabled) ))
n_passed=$(( n_total - n_failed - n_skipped ))

m_passed=$(attr "$results/managed.trx" passed)
m_failed=$(( $(attr "$results/managed.trx" failed) + $(attr "$results/managed.trx" error) + $(attr "$results/managed.trx" timeout) + $(attr "$results/managed.trx" aborted) ))
m_skipped=$(attr "$results/managed.trx" notExecuted)

# A runner that crashed before writing its results counts as a failure, never as a pass.
[[ $native_rc -ne 0 && $n_failed -eq 0 ]] && n_failed=1
[[ $managed_rc -ne 0 && $m_failed -eq 0 ]] && m_failed=1
[[ -f "$results/managed.trx" ]] || m_failed=$(( m_failed > 0 ? m_failed : 1 ))

passed=$(( n_passed + m_passed )); failed=$(( n_failed + m_failed )); skipped=$(( n_skipped + m_skipped ))
echo "native: $n_passed passed, $n_failed failed, $n_skipped skipped; managed: $m_passed passed, $m_failed failed, $m_skipped skipped"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
