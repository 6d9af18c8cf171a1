#!/usr/bin/env bash
# test-summary.sh - the end of scripts/test.sh, separate so it can be tested on result files of its
# own: counts RESULTS/native.xml (CTest's JUnit) and RESULTS/managed.trx (every UnitTestResult by its
# outcome: NUnit's inconclusive and ignored tests are NotExecuted there, which the TRX counters leave
# out, so they are counted here as skipped), prints "N passed, N failed, N skipped" and exits 1 on a
# failure or when fewer tests ran (passed + failed) than the floor in FLOOR (tests/test-floor.txt).
# Usage: scripts/test-summary.sh RESULTS [FLOOR] [NATIVE_RC] [MANAGED_RC]
set -uo pipefail
results=$1
floor_file=${2:-"$(cd "$(dirname "$0")/.." && pwd)/tests/test-floor.txt"}
native_rc=${3:-0}
managed_rc=${4:-0}

# attr FILE NAME: the first value of attribute NAME in FILE (0 when absent).
# (CTest writes one attribute a line, after a tab; the leading blank keeps "passed" from matching
# "passedButRunAborted" and the like.)
attr() { grep -o -m1 "[[:space:]]$2=\"[0-9]*\"" "$1" 2>/dev/null | head -1 | grep -o '[0-9]*' || echo 0; }
# outcomes FILE REGEX: how many UnitTestResult elements of FILE have an outcome matching REGEX.
outcomes() { grep -o '<UnitTestResult [^>]*' "$1" 2>/dev/null | grep -cE " outcome=\"($2)\"" || true; }

native="$results/native.xml" managed="$results/managed.trx"
n_total=$(attr "$native" tests)
n_failed=$(( $(attr "$native" failures) + $(attr "$native" errors) ))
n_skipped=$(( $(attr "$native" skipped) + $(attr "$native" disabled) ))
n_passed=$(( n_total - n_failed - n_skipped ))

m_total=$(outcomes "$managed" '[A-Za-z]+')
m_passed=$(outcomes "$managed" 'Passed')
m_failed=$(outcomes "$managed" 'Failed|Error|Timeout|Aborted')
m_skipped=$(( m_total - m_passed - m_failed ))

# A runner that crashed before writing its results counts as a failure, never as a pass.
[[ $native_rc -ne 0 && $n_failed -eq 0 ]] && n_failed=1
[[ $managed_rc -ne 0 && $m_failed -eq 0 ]] && m_failed=1
[[ -f "$native" ]] || n_failed=$(( n_failed > 0 ? n_failed : 1 ))
[[ -f "$managed" ]] || m_failed=$(( m_failed > 0 ? m_failed : 1 ))

# floor NAME: the floor file's number for NAME (0 when the file or the line is absent).
floor() { awk -v k="$1" '$1 == k { print $2; found = 1; exit } END { if (!found) print 0 }' "$floor_file" 2>/dev/null || echo 0; }
short=0
for suite in native managed; do
  if [[ $suite == native ]]; then ran=$(( n_passed + n_failed )); else ran=$(( m_passed + m_failed )); fi
  min=$(floor "$suite")
  if (( ran < min )); then
    echo "test: only $ran $suite tests ran, fewer than the floor of $min in ${floor_file#"$PWD/"} (a suite that was not discovered or built?)"
    short=1
  fi
done

passed=$(( n_passed + m_passed )); failed=$(( n_failed + m_failed + short )); skipped=$(( n_skipped + m_skipped ))
echo "native: $n_passed passed, $n_failed failed, $n_skipped skipped; managed: $m_passed passed, $m_failed failed, $m_skipped skipped"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
