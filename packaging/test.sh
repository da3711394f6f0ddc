#!/bin/sh
# Runs every test: installs missing packages, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the unit and integration tests (which start their own
# PostgreSQL and nats-server on free loopback ports), then fuzzes each parser for a bounded time
# (packaging/fuzz.sh; FT_FUZZ_SECONDS per target). Extra arguments go to ctest. Fails if
# either fails; both always run.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

./packaging/install-deps.sh
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DFT_SANITIZE=ON >/dev/null
cmake --build build/test -j"$(nproc)"
status=0
(cd build/test && ctest --output-on-failure --timeout 900 -j"$(nproc)" "$@") || status=1
./packaging/fuzz.sh || status=1
exit $status
