#!/usr/bin/env bash
# mutate.sh - mutation testing of Kiln.Core's verdict code with Stryker.NET (the dotnet-stryker local
# tool, pinned in dotnet-tools.json): every surviving mutant is a change to a verdict, a statistic or a
# threshold that no test notices. A benchmark-like run, not part of CI; record the score in docs/QUALITY.md.
# Usage: scripts/mutate.sh [FOLDER...]   folders of managed/Kiln.Core (default: Evaluation Report Health
#        Telemetry Profiles); KILN_MUTATE_CONCURRENCY (default 1: the test runs use both cores already).
# Needs a built tree (scripts/build.sh): many tests load build/lib/libkiln.so or run the kiln host.
# Reports: build/mutation/<utc>/reports/mutation-report.{html,json}; the score is printed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

[[ -f build/lib/libkiln.so ]] || scripts/build.sh
dotnet tool restore >/dev/null

folders=("$@")
[[ ${#folders[@]} -gt 0 ]] || folders=(Evaluation Report Health Telemetry Profiles)
mutate=()
for f in "${folders[@]}"; do
  [[ -d "managed/Kiln.Core/$f" ]] || { echo "mutate: no folder managed/Kiln.Core/$f" >&2; exit 2; }
  mutate+=(--mutate "**/$f/**/*.cs")
done

out="$root/build/mutation/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
started=$(date +%s)
(cd managed/Kiln.Core &&
  dotnet stryker --project Kiln.Core.csproj --test-project "$root/tests/Kiln.Tests/Kiln.Tests.csproj" \
    --configuration Release "${mutate[@]}" --concurrency "${KILN_MUTATE_CONCURRENCY:-1}" \
    --reporter html --reporter json --reporter progress --reporter cleartext --output "$out" --skip-version-check)

# The score the way QUALITY.md records it: killed (incl. timeouts) / (killed + survived + no coverage).
report="$out/reports/mutation-report.json"
if [[ -f "$report" ]]; then
  python3 - "$report" "${folders[*]}" "$(( $(date +%s) - started ))" <<'PY'
import json, sys, collections
report, folders, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
counts = collections.Counter()
for name, f in json.load(open(report))["files"].items():
    for m in f["mutants"]:
        counts[m["status"]] += 1
killed = counts["Killed"] + counts["Timeout"]
judged = killed + counts["Survived"] + counts["NoCoverage"]
score = 100.0 * killed / judged if judged else 0.0
print(f"mutate: {folders}: {score:.1f}% killed ({killed} of {judged}; survived {counts['Survived']}, "
      f"no coverage {counts['NoCoverage']}, compile errors {counts['CompileError']}, ignored {counts['Ignored']}) in {seconds} s")
PY
fi
