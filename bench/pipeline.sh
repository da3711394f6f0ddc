#!/bin/sh
# The provisioning pipeline's throughput:
#   1. outbox -> JetStream: 50,000 events committed in transactions of 500 while the relay runs;
#      events/s and the commit-to-publish delay (p50, p99, max);
#   2. no-op jobs, two workers: 2,000 jobs one per instance, then 2,000 four per instance; jobs/s;
#   3. Standard-tier provisions of the vet product through the API; provisions per minute.
# Usage: bench/pipeline.sh  (FT_BENCH_EVENTS=50000 FT_BENCH_JOBS=2000 FT_BENCH_PROVISIONS=200)
set -eu
. "$(dirname "$0")/lib.sh"

events=${FT_BENCH_EVENTS:-50000}
jobs=${FT_BENCH_JOBS:-2000}
provisions=${FT_BENCH_PROVISIONS:-200}

start_fixture_stack
port=$(free_port)
# ---- 1. outbox -> JetStream
# a) throughput: a backlog of $events committed rows, drained by one relay
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
insert_events "$events" 500 0
stop_host
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay
wait_published
backlog_rate
# b) latency: $events more rows committed 50 at a time, 10,000 a second, while the relay runs
insert_events "$events" 50 0.005
wait_published
sql -c "SELECT format('commit-to-publish over %s events offered at ~10,000/s: p50 %s ms, p99 %s ms, max %s ms', count(*),
                      round(percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000)::numeric, 1),
                      round(percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000)::numeric, 1),
                      round(max(extract(epoch FROM published_at - created_at) * 1000)::numeric, 1))
        FROM ft_outbox WHERE type = 'dev.farutech.bench.v1'"
stop_host

# ---- 2. no-op jobs, two workers
# a first start syncs the catalog (the faulty fixture product) into the database
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
stop_host
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay,worker FT_WORKER_THREADS=2 FT_RATE_LIMIT_RPS=10000000 FT_RATE_LIMIT_BURST=10000000
noop_jobs "$jobs" "$jobs" spread "one per instance, 2 workers"
noop_jobs "$jobs" $((jobs / 4)) ordered "four per instance, in order, 2 workers"

# ---- 3. Standard-tier provisions through the API
key=$(admin_key)
cid=$(curl -s -XPOST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"legal_name":"Bench provisions","tax_id":"BP1","country":"CO"}' \
    "http://127.0.0.1:$port/api/v1/customers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
t0=$(now_ms)
python3 - "$port" "$cid" "$provisions" "$key" <<'PY'
import http.client, json, sys
port, cid, n, key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    body = json.dumps({"code": f"v-{i}", "product": "vet", "plan": "professional", "settings": {"admin_email": f"a{i}@b.test"}})
    c.request("POST", f"/api/v1/customers/{cid}/instances", body=body,
              headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
    r = c.getresponse()
    r.read()
    assert r.status == 202, r.status
PY
wait_active v
t1=$(now_ms)
echo "standard-tier vet provisions: $provisions in $((t1 - t0)) ms with 2 workers = $(awk "BEGIN {printf \"%.0f\", $provisions * 60000 / ($t1 - $t0)}") per minute"
