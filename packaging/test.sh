#!/bin/sh
# Runs every test: installs missing packages, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the unit and integration tests (which start their own
# PostgreSQL and nats-server on free loopback ports). Extra arguments go to ctest.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

./packaging/install-deps.sh
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Debug -DFT_SANITIZE=ON >/dev/null
cmake --build build/test -j"$(nproc)"
cd build/test
exec ctest --output-on-failure --timeout 900 -j"$(nproc)" "$@"
