#!/bin/sh
# Runs the integration tests N times (default 5) while a CPU hog keeps every core busy, to find
# tests that lean on timing. Prints one line per run (duration, result, the tests that failed)
# and a total; exits 1 if any run failed. Not part of packaging/test.sh: it takes a while.
#
# Usage: tests/soak.sh [N]
#   FT_BUILD_DIR          build tree (default build/test; configured with sanitizers if new)
#   FT_SOAK_RUN_TIMEOUT   seconds one run may take before it is stopped and counted failed (2400)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

runs=${1:-5}
case $runs in
    '' | *[!0-9]* | 0)
        echo "usage: tests/soak.sh [N]  (N runs, default 5)" >&2
        exit 2
        ;;
esac
build=${FT_BUILD_DIR:-$root/build/test}
run_timeout=${FT_SOAK_RUN_TIMEOUT:-2400}
cores=$(nproc)

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFT_SANITIZE=ON >/dev/null
fi
cmake --build "$build" -j"$cores" >/dev/null
logs=$build/soak
mkdir -p "$logs"

# The hog: stress-ng when installed, otherwise one busy shell loop per core. Either way it stops
# by itself after the longest the soak may take, should this script be killed outright.
hogs=""
stop_hogs() {
    for p in $hogs; do
        kill "$p" 2>/dev/null || true
    done
    for p in $hogs; do
        wait "$p" 2>/dev/null || true
    done
    hogs=""
}
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bound=$((runs * (run_timeout + 60)))
if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --cpu "$cores" --timeout "${bound}s" --quiet &
    hogs=$!
    hog="stress-ng --cpu $cores"
else
    i=0
    while [ "$i" -lt "$cores" ]; do
        timeout "$bound" sh -c 'while :; do :; done' &
        hogs="$hogs $!"
        i=$((i + 1))
    done
    hog="$cores busy loops (install stress-ng for a steadier load)"
fi
echo "soak: $runs runs of the integration tests under $hog; logs in $logs"

failed_runs=0
n=1
while [ "$n" -le "$runs" ]; do
    log=$logs/run-$n.log
    start=$(date +%s)
    status=0
    (cd "$build" && timeout --kill-after=30 "$run_timeout" \
        ctest -R integration --output-on-failure --timeout 900 -j"$cores") >"$log" 2>&1 || status=$?
    took=$(($(date +%s) - start))
    if [ "$status" -eq 0 ]; then
        echo "run $n/$runs: ${took}s, passed"
    else
        failed_runs=$((failed_runs + 1))
        # the ctest names, then the unittest cases that failed inside them
        suites=$(sed -n 's/^[[:space:]]*[0-9][0-9]* - \(integration\.[^ ]*\) .*/\1/p' "$log" | tr '\n' ' ')
        cases=$(sed -n -e 's/^FAIL: \(test_[A-Za-z0-9_]*\) .*/\1/p' -e 's/^ERROR: \(test_[A-Za-z0-9_]*\) .*/\1/p' "$log" |
            sort -u | tr '\n' ' ')
        if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            suites="${suites}(run timed out after ${run_timeout}s) "
        fi
        echo "run $n/$runs: ${took}s, FAILED: ${suites}${cases:+- $cases}(see $log)"
    fi
    n=$((n + 1))
done
echo "soak: $runs runs, $((runs - failed_runs)) passed, $failed_runs failed"
[ "$failed_runs" -eq 0 ]
