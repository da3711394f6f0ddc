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
python3 python3-yaml curl ca-certificates procps util-linux iproute2 json-schema-test-suite
wrk nginx-light stress-ng prometheus
debhelper dpkg-dev fakeroot lintian
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
