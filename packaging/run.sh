#!/bin/sh
# Runs the control plane on this machine: installs missing packages, builds, starts a private
# PostgreSQL and nats-server under ./var (loopback only), applies migrations and runs
# farutech-host in the foreground with every role. Ctrl-C stops the host; the stack keeps
# running (packaging/stack.sh stop stops it).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

./packaging/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build build/release -j"$(nproc)"

eval "$(./packaging/stack.sh start | sed 's/^/export /')"

listen=${FT_HTTP_LISTEN:-127.0.0.1:8080}
export FT_HTTP_LISTEN="$listen"
export FT_PLUGIN_DIR="${FT_PLUGIN_DIR:-$root/build/release/products}"
export FT_MIGRATIONS_DIR="${FT_MIGRATIONS_DIR:-$root/migrations}"

cat >&2 <<TXT

farutech-host is starting on http://$listen
  try:  curl -s http://$listen/ready
        curl -s http://$listen/metrics | head
  database: $(echo "$FT_DATABASE_URL" | sed 's#://\([^:]*\):[^@]*@#://\1:***@#')
  nats:     $(echo "$FT_NATS_URL" | sed 's#://\([^:]*\):[^@]*@#://\1:***@#')
  (passwords are in ./var/stack.env)

TXT
exec ./build/release/host/farutech-host
