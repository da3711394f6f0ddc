#!/bin/sh
# Entitlements served from memory: with 10,000 instances resolved, wrk on
# GET /api/v1/instances/{id}/entitlements and on the OFREP single-flag POST (random instances,
# each request with its instance's own child-app API key, as child apps send them),
# against nginx serving static files of the same sizes in the same run; then the host's RSS
# with 100,000 instances resolved. Host and nginx take turns over several rounds, so both see
# the same noise; the figures are the medians. Usage: bench/entitlements.sh
#   (FT_BENCH_INSTANCES=10000 FT_BENCH_RSS_INSTANCES=100000 FT_BENCH_DURATION=10s FT_BENCH_ROUNDS=3)
set -eu
. "$(dirname "$0")/lib.sh"

instances=${FT_BENCH_INSTANCES:-10000}
rss_instances=${FT_BENCH_RSS_INSTANCES:-100000}
duration=${FT_BENCH_DURATION:-10s}
rounds=${FT_BENCH_ROUNDS:-3}
conns=${FT_BENCH_CONNECTIONS:-50}

build_release
start_stack
port=$(free_port)
products="$root/build/release/products"

# seed_instances N: N active vet instances on plan professional, spread over 1,000 customers
seed_instances() {
    psql -X -q "$FT_DATABASE_URL" <<SQL
INSERT INTO ft_customers (legal_name, tax_id, country)
SELECT 'Bench ' || g, 'B' || g, 'CO' FROM generate_series(1, 1000) g
ON CONFLICT DO NOTHING;
WITH c AS (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM ft_customers WHERE legal_name LIKE 'Bench %'),
     have AS (SELECT count(*) AS n FROM ft_instances WHERE code LIKE 'b-%')
INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, settings, status)
SELECT c.id, 'b-' || g, 'vet', 'standard', 'production', '{"admin_email":"a@b.test"}', 'active'
FROM have, generate_series(have.n + 1, $1) g JOIN c ON c.rn = 1 + (g % 1000);
INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status)
SELECT i.customer_id, i.id, 'vet', 'professional', 1, 'active' FROM ft_instances i
WHERE i.code LIKE 'b-%' AND NOT EXISTS (SELECT 1 FROM ft_subscriptions s WHERE s.instance_id = i.id);
SQL
}

wait_warm() {
    for _ in $(seq 1 600); do
        grep -q '"entitlements: [0-9]* instances resolved' "$work/host.log" && return 0
        sleep 0.2
    done
    echo "the host did not finish warming its cache" >&2
    exit 1
}

# a first start applies the migrations and writes the catalog
start_host "$port" FT_PLUGIN_DIR="$products"
kill $pids 2>/dev/null || true
wait 2>/dev/null || true
pids=""
seed_instances "$instances"
# one child-app key per instance, as each child app holds its own: "ftk_<prefix>_<secret>" with
# the secret's SHA-256 stored, the same format the API issues (hex digits are base64url too)
psql -X -qAt -F ' ' "$FT_DATABASE_URL" >"$work/ids" <<'SQL'
CREATE TEMP TABLE bench_keys AS
SELECT i.id AS instance_id, i.customer_id, substr(md5(random()::text || i.id::text), 1, 12) AS prefix,
       substr(md5(random()::text) || md5(random()::text), 1, 43) AS secret
FROM ft_instances i WHERE i.code LIKE 'b-%';
INSERT INTO ft_api_keys (prefix, secret_hash, name, customer_id, instance_id, roles, created_by)
SELECT prefix, sha256(convert_to(secret, 'UTF8')), 'bench', customer_id, instance_id, ARRAY['child-app'], 'bench' FROM bench_keys;
SELECT instance_id, 'ftk_' || prefix || '_' || secret FROM bench_keys ORDER BY random();
SQL
export FT_BENCH_IDS="$work/ids"

start_host "$port" FT_PLUGIN_DIR="$products"
wait_warm
grep -o '"entitlements: [^"]*' "$work/host.log" | tail -1 | sed 's/^"/host: /'

id=$(head -1 "$work/ids" | cut -d' ' -f1)
key=$(head -1 "$work/ids" | cut -d' ' -f2)
curl -s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/instances/$id/entitlements" >"$work/ent.json"
curl -s -XPOST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"context":{}}' \
    "http://127.0.0.1:$port/ofrep/v1/evaluate/flags/telemedicine" >"$work/flag.json"
nport=$(free_port)
start_nginx "$nport" ent.json "$(cat "$work/ent.json")"
cp "$work/flag.json" "$work/www/flag.json"
echo "entitlements body $(wc -c <"$work/ent.json") bytes, OFREP body $(wc -c <"$work/flag.json") bytes"

run() { # run URL MODE [PATH]: "req/s p99 non-2xx cpu_us_per_request" (FT_BENCH_SERVER says whose CPU)
    export FT_BENCH_MODE="$2" FT_BENCH_PATH="${3:-/}"
    wrk_run "$1" -t1 -c"$conns" -d"$duration" -s "$root/bench/wrk/ids.lua"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
export FT_BENCH_MODE=entitlements
# warm-up: every child app's key is looked up once, as in the first minute of a real day
wrk -t1 -c"$conns" -d5s -s "$root/bench/wrk/ids.lua" "http://127.0.0.1:$port" >/dev/null
echo "wrk -t1 -c$conns -d$duration, $rounds alternating rounds, host and nginx with $bench_threads threads/workers"
: >"$work/rounds"
i=1
while [ "$i" -le "$rounds" ]; do
    # each line: what req/s p99 non-2xx
    echo "nginx-ent $(FT_BENCH_SERVER=nginx run "http://127.0.0.1:$nport" static /ent.json)" >>"$work/rounds"
    echo "host-ent $(FT_BENCH_SERVER=host run "http://127.0.0.1:$port" entitlements)" >>"$work/rounds"
    echo "nginx-flag $(FT_BENCH_SERVER=nginx run "http://127.0.0.1:$nport" static /flag.json)" >>"$work/rounds"
    echo "host-flag $(FT_BENCH_SERVER=host run "http://127.0.0.1:$port" ofrep)" >>"$work/rounds"
    tail -4 "$work/rounds" | awk -v i="$i" '{r[$1] = $2} END {printf "round %d: entitlements %.0f vs nginx %.0f (%.3f), OFREP %.0f vs nginx %.0f (%.3f)\n",
        i, r["host-ent"], r["nginx-ent"], r["host-ent"] / r["nginx-ent"], r["host-flag"], r["nginx-flag"], r["host-flag"] / r["nginx-flag"]}'
    i=$((i + 1))
done
col() { awk -v w="$1" -v c="$2" '$1 == w {print $c}' "$work/rounds" | median; } # col WHAT COLUMN: the median over rounds
bad() { awk -v w="$1" '$1 == w {s += $4} END {print s + 0}' "$work/rounds"; }
n1=$(col nginx-ent 2); n1p=$(col nginx-ent 3); h1=$(col host-ent 2); h1p=$(col host-ent 3)
n2=$(col nginx-flag 2); n2p=$(col nginx-flag 3); h2=$(col host-flag 2); h2p=$(col host-flag 3)
echo "medians over $rounds rounds:"
printf 'nginx static %s bytes      : %s req/s, p99 %s ms, non-2xx %s\n' "$(wc -c <"$work/ent.json")" "$n1" "$n1p" "$(bad nginx-ent)"
printf 'GET entitlements            : %s req/s, p99 %s ms, non-2xx %s, ratio %.3f\n' "$h1" "$h1p" "$(bad host-ent)" \
    "$(awk "BEGIN {print $h1 / $n1}")"
printf 'nginx static %s bytes       : %s req/s, p99 %s ms, non-2xx %s\n' "$(wc -c <"$work/flag.json")" "$n2" "$n2p" "$(bad nginx-flag)"
printf 'OFREP single flag           : %s req/s, p99 %s ms, non-2xx %s, ratio %.3f\n' "$h2" "$h2p" "$(bad host-flag)" \
    "$(awk "BEGIN {print $h2 / $n2}")"
# the CPU each server spends per request (all its threads), a figure less moved by neighbours
n1c=$(col nginx-ent 5); h1c=$(col host-ent 5); n2c=$(col nginx-flag 5); h2c=$(col host-flag 5)
printf 'CPU per request: entitlements %s us vs nginx %s us (ratio nginx/host %.3f); OFREP %s us vs nginx %s us (%.3f)\n' \
    "$h1c" "$n1c" "$(awk "BEGIN {print $n1c / $h1c}")" "$h2c" "$n2c" "$(awk "BEGIN {print $n2c / $h2c}")"
# At $conns connections, Little's law puts the mean latency at conns / throughput (50 / 80k req/s
# = 0.6 ms) for any server: the p99 goal is read at a light load, below.

# latency at a light load (4 connections): what one child app's screen waits for
lat() { # lat URL MODE [PATH]: p50 and p99 in ms
    export FT_BENCH_MODE="$2" FT_BENCH_PATH="${3:-/}"
    wrk --latency -t1 -c4 -d5s -s "$root/bench/wrk/ids.lua" "$1" |
        awk '$1 == "50%" || $1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)}; printf "%s %.3f ms  ", $1, v}'
}
echo "at 4 connections: nginx static   $(lat "http://127.0.0.1:$nport" static /ent.json)"
echo "at 4 connections: entitlements   $(lat "http://127.0.0.1:$port" entitlements)"
echo "at 4 connections: OFREP flag     $(lat "http://127.0.0.1:$port" ofrep)"

# memory: the same host with rss_instances resolved
kill $pids 2>/dev/null || true
wait 2>/dev/null || true
pids=""
: >"$work/host.log"
start_host "$port" FT_PLUGIN_DIR="$products"
wait_warm
hostpid=$(pgrep -f "$root/build/release/host/farutech-host" -n)
rss_small=$(awk '/VmRSS/ {print $2}' /proc/"$hostpid"/status)
kill $pids 2>/dev/null || true
wait 2>/dev/null || true
pids=""
seed_instances "$rss_instances"
: >"$work/host.log"
start_host "$port" FT_PLUGIN_DIR="$products"
wait_warm
hostpid=$(pgrep -f "$root/build/release/host/farutech-host" -n)
grep -o '"entitlements: [^"]*' "$work/host.log" | tail -1 | sed 's/^"/host: /'
rss_big=$(awk '/VmRSS/ {print $2}' /proc/"$hostpid"/status)
printf 'RSS with %s instances resolved: %.1f MiB (with %s: %.1f MiB; %.2f KiB per record)\n' "$rss_instances" \
    "$(awk "BEGIN {print $rss_big / 1024}")" "$instances" "$(awk "BEGIN {print $rss_small / 1024}")" \
    "$(awk "BEGIN {print ($rss_big - $rss_small) / ($rss_instances - $instances)}")"
