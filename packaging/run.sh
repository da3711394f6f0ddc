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

# The first platform admin of this local stack: created once, its password kept beside the
# stack's own (./var, mode 0600). On another deployment run `farutech-host create-admin`.
var=${FT_VAR_DIR:-$root/var}
admin_email=${FT_ADMIN_EMAIL:-admin@localhost}
if [ ! -s "$var/admin-password" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$var/admin-password")
    if ! FT_ADMIN_PASSWORD=$(cat "$var/admin-password") ./build/release/host/farutech-host create-admin \
        --email "$admin_email" --name "Local admin" 2>"$var/create-admin.log"; then
        grep -q "already" "$var/create-admin.log" || { cat "$var/create-admin.log" >&2; exit 1; }
        rm -f "$var/admin-password"
        echo "note: $admin_email already exists; its password is the one set when it was created" >&2
    fi
fi

cat >&2 <<TXT

farutech-host is starting on http://$listen
  try:  curl -s http://$listen/ready
        curl -s http://$listen/metrics | head
  sign in as $admin_email (password in $var/admin-password):
        token=\$(curl -s http://$listen/api/v1/auth/login -H 'Content-Type: application/json' \\
          -d "{\\"email\\":\\"$admin_email\\",\\"password\\":\\"\$(cat $var/admin-password)\\"}" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
        curl -s http://$listen/api/v1/products -H "Authorization: Bearer \$token"
  database: $(echo "$FT_DATABASE_URL" | sed 's#://\([^:]*\):[^@]*@#://\1:***@#')
  nats:     $(echo "$FT_NATS_URL" | sed 's#://\([^:]*\):[^@]*@#://\1:***@#')
  (passwords are in ./var/stack.env)

TXT
exec ./build/release/host/farutech-host
