#!/bin/sh
# The provisioning pipeline's throughput:
#   1. outbox -> JetStream, against the 100,000 events/s goal and against JetStream's own async
#      publish rate measured in the same run (bench/jspub.c: the same messages, ids and stream,
#      no outbox), rounds alternating so both see the same neighbours: a backlog of $events committed
#      rows drained by one relay (events/s); then rows committed at half the measured rate while
#      the relay runs, commit-to-publish p50/p99/max;
#   2. no-op jobs, two workers: 2,000 jobs one per instance, then 2,000 four per instance; jobs/s;
#   3. Standard-tier provisions of the vet product through the API; provisions per minute.
# Usage: bench/pipeline.sh  (FT_BENCH_EVENTS=50000 FT_BENCH_ROUNDS=3 FT_BENCH_JOBS=2000
#        FT_BENCH_PROVISIONS=200 FT_BENCH_PART=all|relay|jobs)
set -eu
. "$(dirname "$0")/lib.sh"

events=${FT_BENCH_EVENTS:-50000}
rounds=${FT_BENCH_ROUNDS:-3}
jobs=${FT_BENCH_JOBS:-2000}
provisions=${FT_BENCH_PROVISIONS:-200}
part=${FT_BENCH_PART:-all}

start_fixture_stack
port=$(free_port)
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
if [ "$part" = all ] || [ "$part" = relay ]; then
    # ---- 1. outbox -> JetStream
    # the host creates the streams; the baseline publishes into FT_EVENTS as the relay does
    start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
    : >"$work/relay_rates"
    : >"$work/js_rates"
    for r in $(seq 1 "$rounds"); do
        # a) the baseline: JetStream alone
        line=$("$root/build/release/tests/ft_jspub" "$FT_NATS_URL" "$events")
        echo "round $r: $line"
        echo "$line" | awk '{print $(NF - 1)}' >>"$work/js_rates"
        # b) a backlog of $events committed rows, drained by one relay
        insert_events "$events" 500 0
        stop_host
        host_log=$work/relay-$r.log start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay
        wait_published
        line=$(backlog_rate)
        echo "round $r: $line"
        echo "$line" | awk '{print $(NF - 1)}' >>"$work/relay_rates"
        stop_host
        start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
    done
    stop_host
    relay_rate=$(median <"$work/relay_rates")
    js_rate=$(median <"$work/js_rates")
    awk -v r="$relay_rate" -v j="$js_rate" -v n="$rounds" 'BEGIN {
        printf "relay, median of %d rounds: %.0f events/s = %.2f of the 100,000 events/s goal, %.2f of JetStream async publish alone (%.0f msgs/s)\n",
               n, r, r / 100000, r / j, j }'
    # c) latency: rows committed at half the measured rate while the relay runs
    half=$(awk -v r="$relay_rate" 'BEGIN {printf "%d", r / 2}')
    start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay
    insert_paced "$events" "$half"
    wait_published
    sql -c "SELECT format('commit-to-publish over %s events offered at %s/s (half the measured rate): p50 %s ms, p99 %s ms, max %s ms', count(*), $half,
                          round(percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000)::numeric, 1),
                          round(percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000)::numeric, 1),
                          round(max(extract(epoch FROM published_at - created_at) * 1000)::numeric, 1))
            FROM ft_outbox JOIN ft_outbox_published USING (seq) WHERE type = 'dev.farutech.bench.v1'"
    sql -c "SELECT format('offered: %s events in %s ms = %s events/s', count(*), round(extract(epoch FROM max(created_at) - min(created_at)) * 1000),
                          round(count(*) / extract(epoch FROM max(created_at) - min(created_at))))
            FROM ft_outbox WHERE type = 'dev.farutech.bench.v1'"
    forget_bench_events
    stop_host
fi
[ "$part" = relay ] && exit 0

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
