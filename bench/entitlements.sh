#!/bin/sh
# Entitlements served from memory, in two parts (FT_BENCH_PART=throughput, memory, or both by
# default).
# throughput: with 10,000 instances resolved, wrk on GET /api/v1/instances/{id}/entitlements
#   and on the OFREP single-flag POST (random instances, each request with its instance's own
#   child-app API key, as child apps send them), against nginx serving static files of the same
#   sizes in the same run. Host and nginx take turns over several rounds, so both see the same
#   noise; the figures are the medians.
# memory: the host's RSS with no instance and with 100,000 instances of the four products
#   resolved (bytes per record); then a database of 1,000,000 instances: start-up time, the
#   bounded cache's RSS, and the latency of cold reads (instances the cache does not hold: read
#   from PostgreSQL and resolved) and warm reads (the same again, from memory) beside GET /health
#   (the run's baseline), p50/p99 over FT_BENCH_READS instances read in FT_BENCH_ROUNDS rounds,
#   one request at a time on one keep-alive connection.
# Usage: bench/entitlements.sh
#   (FT_BENCH_INSTANCES=10000 FT_BENCH_RSS_INSTANCES=100000 FT_BENCH_BIG_INSTANCES=1000000
#    FT_BENCH_READS=2000 FT_BENCH_DURATION=10s FT_BENCH_ROUNDS=3 FT_BENCH_PART=all)
set -eu
. "$(dirname "$0")/lib.sh"

instances=${FT_BENCH_INSTANCES:-10000}
rss_instances=${FT_BENCH_RSS_INSTANCES:-100000}
big_instances=${FT_BENCH_BIG_INSTANCES:-1000000}
reads=${FT_BENCH_READS:-2000}
duration=${FT_BENCH_DURATION:-10s}
rounds=${FT_BENCH_ROUNDS:-3}
conns=${FT_BENCH_CONNECTIONS:-50}
part=${FT_BENCH_PART:-all}

build_release
start_stack
port=$(free_port)
products="$root/build/release/products"

# seed_instances N: N active vet instances on plan professional, spread over 1,000 customers,
# placed on the default pooled database as the API places them (the placement trigger is off
# while seeding: one counter row updated once per inserted row would take minutes; the count is
# set after)
seed_instances() {
    psql -X -q "$FT_DATABASE_URL" <<SQL
ALTER TABLE ft_instances DISABLE TRIGGER ft_instances_placed;
INSERT INTO ft_customers (legal_name, tax_id, country)
SELECT 'Bench ' || g, 'B' || g, 'CO' FROM generate_series(1, 1000) g
ON CONFLICT DO NOTHING;
WITH c AS (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM ft_customers WHERE legal_name LIKE 'Bench %'),
     have AS (SELECT count(*) AS n FROM ft_instances WHERE code LIKE 'b-%')
INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, settings, status, tenant_database_id)
SELECT c.id, 'b-' || g, 'vet', 'standard', 'production', '{"admin_email":"a@b.test"}', 'active',
       (SELECT id FROM ft_tenant_databases WHERE name = 'default')
FROM have, generate_series(have.n + 1, $1) g JOIN c ON c.rn = 1 + (g % 1000);
INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status)
SELECT i.customer_id, i.id, 'vet', 'professional', 1, 'active' FROM ft_instances i
WHERE i.code LIKE 'b-%' AND NOT EXISTS (SELECT 1 FROM ft_subscriptions s WHERE s.instance_id = i.id);
$placed
SQL
}

# after a seed: the placement counter as the trigger would have kept it, and the trigger back on
placed="UPDATE ft_tenant_databases d SET placed = (SELECT count(*) FROM ft_instances i
    WHERE i.tenant_database_id = d.id AND i.status <> 'deleted');
ALTER TABLE ft_instances ENABLE TRIGGER ft_instances_placed;"

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

if [ "$part" = all ] || [ "$part" = throughput ]; then
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
# key_reads: "<misses> <refreshes>", the API key rows the host has read from the database so far
key_reads() {
    curl -s "http://127.0.0.1:$port/metrics" | awk '/^ft_api_key_lookups_total\{reason="miss"/ {m += $2}
        /^ft_api_key_lookups_total\{reason="refresh"/ {r += $2} END {printf "%d %d", m, r}'
}
# warm-up: every child app's key is looked up once, as in the first minute of a real day (wrk
# cycles through the keys from the first each run: runs of 5 s until every key was read, at most 6)
for _ in 1 2 3 4 5 6; do
    wrk -t1 -c"$conns" -d5s -s "$root/bench/wrk/ids.lua" "http://127.0.0.1:$port" >/dev/null
    [ "$(key_reads | cut -d' ' -f1)" -ge "$(wc -l <"$work/ids")" ] && break
done
echo "warm-up: $(key_reads | cut -d' ' -f1) API keys read"
echo "wrk -t1 -c$conns -d$duration, $rounds alternating rounds, host and nginx with $bench_threads threads/workers"
: >"$work/rounds"
i=1
reads0=$(key_reads)
while [ "$i" -le "$rounds" ]; do
    # each line: what req/s p99 non-2xx
    echo "nginx-ent $(FT_BENCH_SERVER=nginx run "http://127.0.0.1:$nport" static /ent.json)" >>"$work/rounds"
    echo "host-ent $(FT_BENCH_SERVER=host run "http://127.0.0.1:$port" entitlements)" >>"$work/rounds"
    echo "nginx-flag $(FT_BENCH_SERVER=nginx run "http://127.0.0.1:$nport" static /flag.json)" >>"$work/rounds"
    echo "host-flag $(FT_BENCH_SERVER=host run "http://127.0.0.1:$port" ofrep)" >>"$work/rounds"
    reads1=$(key_reads)
    tail -4 "$work/rounds" | awk -v i="$i" -v a="$reads0" -v b="$reads1" '{r[$1] = $2; c[$1] = $5} END {
        split(a, x, " "); split(b, y, " ")
        printf "round %d: entitlements %.0f vs nginx %.0f (%.3f; CPU %s vs %s us), OFREP %.0f vs nginx %.0f (%.3f; CPU %s vs %s us); API keys read: %d waited for, %d in the background\n",
        i, r["host-ent"], r["nginx-ent"], r["host-ent"] / r["nginx-ent"], c["host-ent"], c["nginx-ent"],
        r["host-flag"], r["nginx-flag"], r["host-flag"] / r["nginx-flag"], c["host-flag"], c["nginx-flag"], y[1] - x[1], y[2] - x[2]
        printf "ratio-ent %.4f\nratio-flag %.4f\n", r["host-ent"] / r["nginx-ent"], r["host-flag"] / r["nginx-flag"] > "/dev/stderr"}' 2>>"$work/ratios"
    reads0=$reads1
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
rmed() { awk -v w="$1" '$1 == w {print $2}' "$work/ratios" | median; } # the median of one route's round ratios
printf 'median of the rounds ratios (host / nginx, each round side by side): GET entitlements %.3f, OFREP single flag %.3f (goal 0.9)\n' \
    "$(rmed ratio-ent)" "$(rmed ratio-flag)"
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
fi

# ---- memory, start-up and cold reads

# seed_fleet N: instances (codes f-<n>) until the database holds N, over every plan of the four
# products, spread over 1,000 customers: 1 in 10 trialing, 1 in 50 suspended, 1 in 20 with an
# override (the product's first feature switched off). The entitlement and placement triggers are
# off while seeding (no host listens; each would update a row and notify once per seeded row).
seed_fleet() {
    sql <<SQL
ALTER TABLE ft_instances DISABLE TRIGGER ft_instances_placed;
ALTER TABLE ft_subscriptions DISABLE TRIGGER ft_subscriptions_entitlements;
ALTER TABLE ft_feature_overrides DISABLE TRIGGER ft_feature_overrides_entitlements;
INSERT INTO ft_customers (legal_name, tax_id, country)
SELECT 'Bench ' || g, 'B' || g, 'CO' FROM generate_series(1, 1000) g
ON CONFLICT DO NOTHING;
CREATE TEMP TABLE plans AS
SELECT product_code, code, current_version, (row_number() OVER (ORDER BY product_code, code) - 1)::int AS k
FROM ft_plans WHERE product_code IN ('vet', 'erp', 'crm', 'pos') AND retired_at IS NULL;
WITH c AS (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM ft_customers WHERE legal_name LIKE 'Bench %'),
     have AS (SELECT count(*) AS n, (SELECT count(*) FROM ft_instances WHERE code LIKE 'f-%') AS f FROM ft_instances)
INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, settings, status, tenant_database_id)
SELECT c.id, 'f-' || g, p.product_code, 'standard', 'production', '{"admin_email":"a@b.test"}', 'active',
       (SELECT id FROM ft_tenant_databases WHERE name = 'default')
FROM have, generate_series(have.f + 1, have.f + $1 - have.n) g
JOIN c ON c.rn = 1 + (g % 1000) JOIN plans p ON p.k = g % (SELECT count(*) FROM plans);
INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status, trial_ends_at)
SELECT i.customer_id, i.id, p.product_code, p.code, p.current_version,
       CASE WHEN x.g % 10 = 0 THEN 'trialing' WHEN x.g % 50 = 1 THEN 'suspended' ELSE 'active' END,
       CASE WHEN x.g % 10 = 0 THEN now() + interval '14 days' END
FROM ft_instances i CROSS JOIN LATERAL (SELECT substr(i.code, 3)::int AS g) x
JOIN plans p ON p.k = x.g % (SELECT count(*) FROM plans)
WHERE i.code LIKE 'f-%' AND NOT EXISTS (SELECT 1 FROM ft_subscriptions s WHERE s.instance_id = i.id);
INSERT INTO ft_feature_overrides (subscription_id, product_code, feature_code, enabled, reason, set_by)
SELECT s.id, s.product_code, f.code, false, 'bench', 'bench'
FROM ft_subscriptions s JOIN ft_instances i ON i.id = s.instance_id
CROSS JOIN LATERAL (SELECT code FROM ft_features WHERE product_code = s.product_code ORDER BY code LIMIT 1) f
WHERE i.code LIKE 'f-%' AND substr(i.code, 3)::int % 20 = 3
  AND NOT EXISTS (SELECT 1 FROM ft_feature_overrides o WHERE o.subscription_id = s.id);
ALTER TABLE ft_subscriptions ENABLE TRIGGER ft_subscriptions_entitlements;
ALTER TABLE ft_feature_overrides ENABLE TRIGGER ft_feature_overrides_entitlements;
$placed
ANALYZE ft_instances;
ANALYZE ft_subscriptions;
ANALYZE ft_feature_overrides;
SQL
}

rss_kib() { awk '/VmRSS/ {print $2}' /proc/"$host_pid"/status; }
metric() { curl -fs "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# start_timed: starts the host (no rate limit: one credential sends every read) and prints how
# long it took to answer /health and /ready
start_timed() {
    : >"$work/host.log"
    _t0=$(now_ms)
    start_host "$port" FT_PLUGIN_DIR="$products" FT_RATE_LIMIT_RPS=0 "$@"
    _t1=$(now_ms)
    until curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do sleep 0.05; done
    _t2=$(now_ms)
    echo "start-up: /health answered after $((_t1 - _t0)) ms, /ready after $((_t2 - _t0)) ms"
}

# reads IDS_FILE ROUNDS: GET entitlements of each id twice, one request at a time on one keep-alive
# connection: cold (the cache does not hold it: read from PostgreSQL and resolved), then warm (from
# memory), each pair followed by GET /health, the run's own baseline (the cheapest route: what
# the client, the loop and the box's noise cost). The ids are split into ROUNDS rounds; p50/p99
# of each round, then the medians over rounds.
reads() {
    FT_BENCH_PORT=$port FT_BENCH_KEY=$key python3 - "$1" "$2" <<'PY'
import http.client, os, statistics, sys, time
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
rounds = int(sys.argv[2])
if len(ids) < rounds:
    sys.exit("no instance outside the cache to read cold: the database holds fewer than the bound")
conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["FT_BENCH_PORT"]))
auth = {"Authorization": "Bearer " + os.environ["FT_BENCH_KEY"]}
def get(path, headers):
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("GET %s: %d" % (path, r.status))
    return (time.perf_counter() - t) * 1000
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]
get("/health", {})
kinds = ("cold", "warm", "/health")
per = {k: [] for k in kinds}
n = len(ids) // rounds
for r in range(rounds):
    ms = {k: [] for k in kinds}
    for i in ids[r * n:(r + 1) * n]:
        path = "/api/v1/instances/%s/entitlements" % i
        ms["cold"].append(get(path, auth))
        ms["warm"].append(get(path, auth))
        ms["/health"].append(get("/health", {}))
    print("round %d (%d instances):" % (r + 1, n) + ",".join(
        " %s p50 %.3f p99 %.3f ms" % (k, pct(ms[k], 50), pct(ms[k], 99)) for k in kinds))
    for k in kinds:
        per[k].append((pct(ms[k], 50), pct(ms[k], 99)))
med = {k: (statistics.median(a for a, _ in per[k]), statistics.median(b for _, b in per[k])) for k in kinds}
for k in kinds:
    print("%-8s reads: median over %d rounds: p50 %.3f ms, p99 %.3f ms" % (k, rounds, med[k][0], med[k][1]))
# what a cold read adds to the cheapest request of the same run (the database, resolving, caching)
print("cold beside /health: p50 +%.3f ms (x%.2f), p99 +%.3f ms (x%.2f); each round's cold p99 / /health p99: %s" % (
    med["cold"][0] - med["/health"][0], med["cold"][0] / med["/health"][0],
    med["cold"][1] - med["/health"][1], med["cold"][1] / med["/health"][1],
    ", ".join("%.2f" % (c[1] / h[1]) for c, h in zip(per["cold"], per["/health"]))))
PY
}

if [ "$part" = all ] || [ "$part" = memory ]; then
    stop_host
    start_timed
    wait_warm
    rss_empty=$(rss_kib)
    have=$(sql -c "SELECT count(*) FROM ft_instances")
    stop_host
    t0=$(now_ms)
    seed_fleet "$rss_instances"
    echo "seeded $rss_instances instances of the four products in $(($(now_ms) - t0)) ms"
    start_timed
    wait_warm
    grep -o '"entitlements: [^"]*' "$work/host.log" | tail -1 | sed 's/^"/host: /'
    rss=$(rss_kib)
    cached=$(metric ft_entitlements_cached)
    printf 'RSS with %s instances resolved: %.1f MiB (with %s: %.1f MiB); %.0f bytes per record\n' "$cached" \
        "$(awk "BEGIN {print $rss / 1024}")" "$have" "$(awk "BEGIN {print $rss_empty / 1024}")" \
        "$(awk "BEGIN {print ($rss - $rss_empty) * 1024 / ($cached - $have)}")"
    stop_host
fi

if { [ "$part" = all ] || [ "$part" = memory ]; } && [ "$big_instances" -gt 0 ]; then
    t0=$(now_ms)
    seed_fleet "$big_instances"
    echo "seeded up to $big_instances instances in $(($(now_ms) - t0)) ms"
    start_timed
    key=$(admin_key)
    wait_warm
    grep -o '"entitlements: [^"]*' "$work/host.log" | tail -1 | sed 's/^"/host: /'
    cap=$(env FT_PLUGIN_DIR="$products" "$root/build/release/host/farutech-host" config 2>/dev/null |
        awk -F= '$1 == "FT_ENTITLEMENT_CACHE_MAX" {print $2}')
    printf 'RSS with %s instances in the database, %s cached (FT_ENTITLEMENT_CACHE_MAX=%s): %.1f MiB\n' \
        "$(sql -c "SELECT count(*) FROM ft_instances")" "$(metric ft_entitlements_cached)" "$cap" \
        "$(awk "BEGIN {print $(rss_kib) / 1024}")"
    # instances the warm-up did not reach (it reads in id order, as far as the bound)
    sql -c "SELECT id FROM (SELECT i.id FROM ft_instances i JOIN ft_subscriptions s ON s.instance_id = i.id
            ORDER BY i.id OFFSET ${cap:-250000} + 10000) x ORDER BY random() LIMIT $reads" >"$work/cold"
    misses=$(metric ft_entitlements_cache_misses_total)
    # blocks of the tables a cold read touches (and their indexes) that PostgreSQL found in its
    # buffers or had to read from the kernel (the page cache, or the disk): before and after
    blocks="SELECT sum(heap_blks_hit + coalesce(idx_blks_hit, 0)) || ' ' || sum(heap_blks_read + coalesce(idx_blks_read, 0))
            FROM pg_statio_user_tables WHERE relname IN ('ft_instances', 'ft_subscriptions', 'ft_feature_overrides', 'ft_plan_features')"
    blocks0=$(sql -c "$blocks")
    reads "$work/cold" "$rounds"
    echo "cache misses during the reads: $(($(metric ft_entitlements_cache_misses_total) - ${misses:-0})) (cold reads: $((reads / rounds * rounds)))"
    sleep 11 # a backend's counters reach the statistics within 10 s of its going idle
    echo "$blocks0 $(sql -c "$blocks") $((reads / rounds * rounds))" | awk '{printf "PostgreSQL blocks during the reads: %d in its buffers, %d read from the kernel (%.2f per cold read)\n", $3 - $1, $4 - $2, ($4 - $2) / $5}'
    printf 'RSS after the reads: %.1f MiB; evictions %s\n' "$(awk "BEGIN {print $(rss_kib) / 1024}")" \
        "$(metric ft_entitlements_evictions_total)"
fi
