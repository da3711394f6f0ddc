#!/bin/sh
# Builds the libFuzzer targets (clang, ASan + UBSan) in build/fuzz and runs each for
# FT_FUZZ_SECONDS (default 60) on a copy of its seed corpus in fuzz/corpus/<target>, with its
# dictionary if there is one. The repository's corpus is never written. Prints per target the
# executions and the coverage reached; exits 1 if any target crashes, leaks, times out or runs
# out of memory, printing the reproducer (kept in build/fuzz/artifacts/<target>/) and the report.
# Usage: packaging/fuzz.sh [target...]   (default: every target)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

seconds=${FT_FUZZ_SECONDS:-60}
targets=${*:-"fuzz_request_body fuzz_ofrep_context fuzz_plugin_descriptor"}
build=build/fuzz

command -v clang >/dev/null || { echo "fuzz: clang is required (packaging/install-deps.sh installs it)" >&2; exit 1; }
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFT_SANITIZE=ON -DFT_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets

work=$(mktemp -d "${TMPDIR:-/tmp}/ft-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=""
for t in $targets; do
    corpus="$work/$t/corpus"
    artifacts="$root/$build/artifacts/$t"
    log="$work/$t/log"
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    [ -d "fuzz/corpus/$t" ] && cp -R "fuzz/corpus/$t/." "$corpus/"
    set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/"
    [ -f "fuzz/$t.dict" ] && set -- "$@" -dict="fuzz/$t.dict"
    echo "fuzz: $t for ${seconds}s"
    # the outer timeout only guards against a fuzzer that does not stop by itself
    rc=0
    timeout -k 10 $((seconds + 120)) "$build/fuzz/$t" "$@" "$corpus" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -n 1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/p')
    echo "fuzz: $t: ${execs:-?} executions, ${cov:-cov: ? ft: ?}, corpus $(find "$corpus" -type f | wc -l) inputs"
    if [ "$rc" -ne 0 ]; then
        failed="$failed $t"
        echo "fuzz: $t FAILED (exit $rc)"
        for a in "$artifacts"/*; do
            [ -f "$a" ] && echo "fuzz: reproducer: $a (run: $build/fuzz/$t $a)"
        done
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "fuzz: $t did not stop by itself"
        fi
        echo "---- $t output (last 80 lines) ----"
        tail -n 80 "$log"
        echo "----"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed"
    exit 1
fi
echo "fuzz: all targets passed"
