#!/bin/sh
# The figures behind the capacity model (README, "Capacity model"):
#   1. Standard tier: FT_BENCH_TENANTS instances provisioned through the API, the products vet,
#      erp, crm and pos in turn, each for a customer of its own, into the one pooled tenant
#      database: its growth per tenant (and each product schema's), the control-plane rows and
#      bytes per tenant, provisions per second, and a tenant-scoped read under row-level
#      security (EXPLAIN ANALYZE as the tenant role) with one tenant per product and at the end;
#   2. Enterprise tier: FT_BENCH_ENTERPRISE instances, one database each: size on disk, provision
#      time, CREATE DATABASE alone, and the connections the host holds to tenant databases;
#   3. NATS: a relay draining an outbox backlog (events/s) and no-op jobs (jobs/s) against one
#      nats-server, then against a 3-node loopback cluster with R3 streams; bytes per event stored;
#   4. PostgreSQL connections of a host per role (api, relay, worker) and of the all-roles host,
#      idle and under load.
# Usage: bench/capacity.sh  (FT_BENCH_TENANTS=500 FT_BENCH_ENTERPRISE=20 FT_BENCH_EVENTS=20000
#   FT_BENCH_JOBS=2000; about 6 minutes on 2 cores)
set -eu
. "$(dirname "$0")/lib.sh"

per_product=$((${FT_BENCH_TENANTS:-500} / 4))
tenants=$((per_product * 4))
enterprise=${FT_BENCH_ENTERPRISE:-20}
events=${FT_BENCH_EVENTS:-20000}
jobs=${FT_BENCH_JOBS:-2000}

start_fixture_stack
port=$(free_port)
tenant_url=$(printf '%s' "$FT_DATABASE_URL" | sed 's#/farutech$#/farutech_tenants#')
tsql() { psql -X -qAt "$tenant_url" "$@"; }
unlimited="FT_RATE_LIMIT_RPS=10000000 FT_RATE_LIMIT_BURST=10000000"
kib() { awk -v b="$1" -v n="$2" 'BEGIN {printf "%.1f KiB", b / n / 1024}'; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }

# wait_ready PORT: until the host on PORT answers /ready with 200 (database, migrations, NATS, streams)
wait_ready() {
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the host on port $1 did not become ready:" >&2
    curl -s "http://127.0.0.1:$1/ready" >&2
    exit 1
}

# provision TIER PREFIX COUNT: COUNT instances of TIER through the API (products in turn, plan
# professional, a customer each), then waits until every one is active
provision() {
    python3 - "$port" "$key" "$1" "$2" "$3" <<'PY'
import http.client, json, sys
port, key, tier, prefix, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
c = http.client.HTTPConnection("127.0.0.1", port)
def post(path, body):
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
    r = c.getresponse()
    data = r.read()
    if r.status not in (201, 202):
        sys.exit(f"POST {path}: {r.status} {data[:400]!r}")
    return json.loads(data)
for i in range(n):
    customer = post("/api/v1/customers", {"legal_name": f"Capacity {prefix} {i}", "tax_id": f"CAP-{prefix}-{i}", "country": "CO"})
    post(f"/api/v1/customers/{customer['id']}/instances",
         {"code": f"{prefix}-{i}", "product": ["vet", "erp", "crm", "pos"][i % 4], "plan": "professional", "tier": tier,
          "settings": {"admin_email": f"admin{i}@{prefix}.example.com"}})
PY
    wait_active "$2"
}

# snapshot FILE: "key bytes-or-rows" lines: the tenant database, each product schema in it (tables
# with their indexes and TOAST), the control-plane database and the rows of each of its tables
snapshot() {
    {
        tsql -F ' ' -c "SELECT 'db:tenants', pg_database_size(current_database())
                        UNION ALL
                        SELECT 'schema:' || n.nspname, sum(pg_total_relation_size(c.oid)) FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname IN ('vet', 'erp', 'crm', 'pos') AND c.relkind = 'r' GROUP BY n.nspname"
        sql -F ' ' -c "SELECT 'db:control', pg_database_size(current_database())
                       UNION ALL
                       SELECT 'rows:' || relname, (xpath('/row/n/text()',
                              query_to_xml(format('SELECT count(*) AS n FROM %I', relname), false, true, '')))[1]::text::bigint
                       FROM pg_stat_user_tables WHERE schemaname = 'public'"
    } >"$1"
}
# growth BEFORE AFTER KEY: AFTER's value of KEY minus BEFORE's
growth() { awk -v k="$3" '$1 == k {v[FILENAME] = $2} END {print v[ARGV[2]] - v[ARGV[1]]}' "$1" "$2"; }

# rls_read: per product, EXPLAIN ANALYZE of its tenants' reference list (SELECT * of one table,
# which row-level security narrows to the tenant) for up to 50 random tenants (p50 and the
# slowest), each in a
# transaction as the tenant role with the tenant's id set, as the host runs product steps
rls_read() {
    for pt in vet:species erp:accounts crm:pipeline_stages pos:tax_rates; do
        p=${pt%%:*} t=${pt#*:}
        sql -c "SELECT id FROM ft_instances WHERE product_code = '$p' AND tier = 'standard' AND status = 'active'
                ORDER BY random() LIMIT 50" |
            while read -r id; do
                echo "BEGIN; SET LOCAL ROLE farutech_tenant; SELECT set_config('farutech.tenant_id', '$id', true);"
                echo "EXPLAIN ANALYZE SELECT * FROM $p.$t; COMMIT;"
            done | tsql >"$work/explain"
        rows=$(tsql -c "SELECT count(*) FROM $p.$t")
        printf '  %s.%s (%s rows in all): %s tenants, execution p50 %s ms, slowest %s ms, plan: %s\n' "$p" "$t" "$rows" \
            "$(grep -c 'Execution Time' "$work/explain")" \
            "$(awk '/Execution Time/ {print $3}' "$work/explain" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')" \
            "$(awk '/Execution Time/ {print $3}' "$work/explain" | sort -g | tail -1)" \
            "$(grep -m1 'Scan' "$work/explain" | sed 's/ *(cost.*//; s/^ *//; s/^-> *//')"
    done
}

# The connections of host processes to PostgreSQL, sampled every 0.2 s: "sample pid application
# database" lines (the host's pid from the socket's owner, the application name from
# pg_stat_activity; Enterprise tenant databases are shown as ft_*).
cat >"$work/conns.py" <<'PY'
import os, re, subprocess, sys, time
pg_port, url, stop = sys.argv[1], sys.argv[2], sys.argv[3]
n = 0
while not os.path.exists(stop):
    ss = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{pg_port} )"], capture_output=True, text=True).stdout
    owner = {}
    for line in ss.splitlines():
        m = re.search(r"pid=(\d+)", line)
        owner[line.split()[2].rsplit(":", 1)[1]] = m.group(1) if m else "?"
    rows = subprocess.run(["psql", "-X", "-qAt", "-F", " ", url, "-c",
                           "SELECT client_port, application_name, CASE WHEN datname LIKE 'ft\\_%' THEN 'ft_*' ELSE datname END"
                           " FROM pg_stat_activity WHERE application_name LIKE 'farutech%' AND client_port IS NOT NULL"],
                          capture_output=True, text=True).stdout
    for r in rows.splitlines():
        port, app, db = r.split(" ")
        print(n, owner.get(port, "?"), app, db, flush=True)
    n += 1
    time.sleep(0.2)
PY
sample_start() { # sample_start FILE
    rm -f "$work/sample.stop"
    python3 "$work/conns.py" "$FT_PG_PORT" "$FT_DATABASE_URL" "$work/sample.stop" >"$1" &
    sampler=$!
    pids="$pids $sampler"
}
sample_stop() {
    : >"$work/sample.stop"
    wait "$sampler" 2>/dev/null || true
}
# peak FILE PID: "<most connections at once> (<per application name, its most at once>)" of PID
peak() {
    awk -v pid="$2" '$2 == pid {t[$1]++; a[$1 " " $3 "@" $4]++}
        END {m = 0; for (s in t) if (t[s] > m) m = t[s]
             for (k in a) {split(k, f, " "); if (a[k] > b[f[2]]) b[f[2]] = a[k]}
             out = ""; for (x in b) out = out (out == "" ? "" : ", ") x " " b[x]
             printf "%d (%s)", m, out}' "$1"
}

# ---- 1. Standard tier: the pooled tenant database
start_host "$port" FT_PLUGIN_DIR="$plugins" $unlimited
wait_ready "$port"
key=$(admin_key)
echo "== Standard tier: $tenants tenants, $per_product per product, in the pooled database farutech_tenants"
provision standard first 4 # one tenant per product: the product schemas exist from here on
snapshot "$work/before"
echo "tenant-scoped read with 1 tenant per product:"
rls_read
t0=$(now_ms)
provision standard s "$tenants"
t1=$(now_ms)
snapshot "$work/after"
echo "provisioned $tenants Standard tenants in $((t1 - t0)) ms = $(awk "BEGIN {printf \"%.1f\", $tenants * 1000 / ($t1 - $t0)}") per second" \
    "(one API client posting customer then instance; one host, FT_WORKER_THREADS=2)"
sql -c "SELECT format('provision job, start to finish: avg %s ms, p99 %s ms', round(avg(ms)), round(percentile_disc(0.99) WITHIN GROUP (ORDER BY ms)))
        FROM (SELECT extract(epoch FROM j.finished_at - j.started_at) * 1000 AS ms FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id
              WHERE i.code LIKE 's-%' AND j.kind = 'provision') x"
d=$(growth "$work/before" "$work/after" db:tenants)
echo "tenant database: +$(mib "$d") for $tenants tenants = $(kib "$d" "$tenants") per tenant; now $(mib "$(awk '$1 == "db:tenants" {print $2}' "$work/after")")"
for p in vet erp crm pos; do
    d=$(growth "$work/before" "$work/after" "schema:$p")
    echo "  schema $p: $(kib "$d" "$per_product") per tenant"
done
d=$(growth "$work/before" "$work/after" db:control)
echo "control-plane database: +$(mib "$d") = $(kib "$d" "$tenants") per tenant (with its customer); rows per tenant:"
awk -v n="$tenants" 'FNR == NR {b[$1] = $2; next} $1 ~ /^rows:/ && $2 - b[$1] > 0 {printf "  %s %.1f\n", substr($1, 6), ($2 - b[$1]) / n}' \
    "$work/before" "$work/after" | sort -k2 -gr
echo "tenant-scoped read with $((per_product + 1)) tenants per product:"
rls_read

# ---- 2. Enterprise tier: one database per instance
echo "== Enterprise tier: $enterprise instances, one database each"
sample_start "$work/conns-enterprise"
t0=$(now_ms)
provision enterprise e "$enterprise"
t1=$(now_ms)
sample_stop
echo "provisioned $enterprise Enterprise instances in $((t1 - t0)) ms = $(awk "BEGIN {printf \"%.2f\", $enterprise * 1000 / ($t1 - $t0)}") per second"
sql -c "SELECT format('  %s: provision job avg %s ms, max %s ms', i.product_code, round(avg(extract(epoch FROM j.finished_at - j.started_at) * 1000)),
                      round(max(extract(epoch FROM j.finished_at - j.started_at) * 1000)))
        FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id WHERE i.code LIKE 'e-%' AND j.kind = 'provision'
        GROUP BY i.product_code ORDER BY 1"
sql -c "SELECT format('database size on disk: avg %s, min %s, max %s (an empty database, template1: %s)',
                      pg_size_pretty(avg(pg_database_size(datname))::bigint), pg_size_pretty(min(pg_database_size(datname))),
                      pg_size_pretty(max(pg_database_size(datname))), pg_size_pretty(pg_database_size('template1')))
        FROM pg_database WHERE datname LIKE 'ft\_%'"
: >"$work/createdb"
for i in 1 2 3 4 5; do
    t0=$(now_ms)
    sql -c "CREATE DATABASE capacity_empty_$i"
    t1=$(now_ms)
    echo $((t1 - t0)) >>"$work/createdb"
    sql -c "DROP DATABASE capacity_empty_$i"
done
echo "CREATE DATABASE alone (psql round trip included): $(sort -n "$work/createdb" | tr '\n' ' ')ms"
echo "host connections to Enterprise databases: at most $(awk '$4 == "ft_*" {n[$1]++} END {m = 0; for (s in n) if (n[s] > m) m = n[s]; print m}' \
    "$work/conns-enterprise") at once while provisioning; $(sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'ft\_%'") now, idle"
sql -c "SELECT format('PostgreSQL: max_connections %s, superuser_reserved_connections %s, shared_buffers %s, autovacuum_naptime %s',
                      current_setting('max_connections'), current_setting('superuser_reserved_connections'),
                      current_setting('shared_buffers'), current_setting('autovacuum_naptime'))"
stop_host

# ---- 3. NATS: one server, then a 3-node cluster with R3 streams
# nats_run LABEL MONITOR_PORT [host env...]: an outbox backlog drained by the relay of a host with
# every role, then no-op jobs; the bytes FT_EVENTS stores per message
nats_run() {
    _label=$1 _mon=$2
    shift 2
    insert_events "$events" 500 0
    start_host "$port" FT_PLUGIN_DIR="$plugins" $unlimited "$@"
    wait_published
    echo "$_label: $(backlog_rate)"
    noop_jobs "$jobs" "$jobs" "$_label" "$_label, one per instance, 2 workers"
    curl -s "http://127.0.0.1:$_mon/jsz?accounts=true&streams=true&config=true" | python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == "FT_EVENTS":
            st = s["state"]
            print("%s: FT_EVENTS holds %d messages in %d bytes = %d bytes each, replicas %d" % (sys.argv[1], st["messages"], st["bytes"],
                  st["bytes"] // max(st["messages"], 1), s["config"].get("num_replicas", 1)))' "$_label"
    stop_host
}
echo "== NATS: $events events and $jobs no-op jobs, one nats-server vs a 3-node cluster (R3)"
nats_run single "$FT_NATS_MONITOR_PORT"

cluster_urls="" routes=""
for n in 1 2 3; do
    eval "np$n=$(free_port) cp$n=$(free_port) mp$n=$(free_port)"
done
routes="nats-route://127.0.0.1:$cp1, nats-route://127.0.0.1:$cp2, nats-route://127.0.0.1:$cp3"
for n in 1 2 3; do
    eval "np=\$np$n cp=\$cp$n mp=\$mp$n"
    mkdir -p "$work/nats$n"
    cat >"$work/nats$n.conf" <<CONF
server_name: n$n
listen: "127.0.0.1:$np"
http: "127.0.0.1:$mp"
jetstream { store_dir: "$work/nats$n" }
cluster { name: capacity, listen: "127.0.0.1:$cp", routes: [$routes] }
CONF
    nats-server -c "$work/nats$n.conf" >"$work/nats$n.log" 2>&1 &
    daemons="$daemons $!"
    cluster_urls="$cluster_urls${cluster_urls:+,}nats://127.0.0.1:$np"
done
for n in 1 2 3; do
    eval "mp=\$mp$n"
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$mp/healthz?js-enabled-only=true" >/dev/null 2>&1 && break
        sleep 0.1
    done
done
nats_run cluster-r3 "$mp1" FT_NATS_URL="$cluster_urls" FT_NATS_REPLICAS=3

# ---- 4. PostgreSQL connections per host
# conns ROLES LOAD: a host with ROLES, idle for 3 s, then under LOAD (api: wrk on a
# database-backed list for 5 s; relay: an outbox backlog; worker: no-op jobs, published by a second
# host with only the relay role, whose connections are not counted; all: the three at once)
echo "== PostgreSQL connections per host process (FT_DB_POOL_SIZE=8, FT_WORKER_THREADS=2, FT_THREADS=$bench_threads)"
conns() {
    start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES="$1" $unlimited
    hpid=$host_pid
    wait_ready "$port"
    if [ "$1" = worker ]; then
        host_log="$work/relay.log"
        start_host "$(free_port)" FT_PLUGIN_DIR="$plugins" FT_ROLES=relay
        host_log=""
    fi
    sample_start "$work/idle"
    sleep 3
    sample_stop
    sample_start "$work/load"
    case $2 in
    api) wrk -t1 -c16 -d5s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/customers?limit=20" >/dev/null ;;
    relay) insert_events "$events" 500 0 && wait_published && backlog_rate >/dev/null ;;
    worker) noop_jobs 1000 1000 "conns-$1" "" >/dev/null ;;
    all)
        wrk -t1 -c16 -d10s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/api/v1/customers?limit=20" >/dev/null &
        wrk_pid=$!
        insert_events "$events" 500 0
        noop_jobs 1000 1000 "conns-all" "" >/dev/null
        wait_published
        backlog_rate >/dev/null
        wait "$wrk_pid"
        ;;
    esac
    sample_stop
    printf '  roles %-16s idle %s; under load %s\n' "$1" "$(peak "$work/idle" "$hpid")" "$(peak "$work/load" "$hpid")"
    stop_host
}
conns api api
conns relay relay
conns worker worker
conns api,relay,worker all
