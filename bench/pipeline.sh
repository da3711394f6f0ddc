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

build_release with-fixtures
start_stack
plugins="$work/plugins"
mkdir -p "$plugins"
cp "$root"/build/release/products/*.so "$root/build/release/tests/plugins/faulty/faulty.so" "$plugins/"
port=$(free_port)
sql() { psql -X -qAt "$FT_DATABASE_URL" "$@"; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
stop_host() {
    kill $pids 2>/dev/null || true
    wait 2>/dev/null || true
    pids=""
}

# ---- 1. outbox -> JetStream
# insert_events N ROWS_PER_COMMIT PAUSE_S: N events committed ROWS_PER_COMMIT at a time
insert_events() {
    sql <<SQL
DO \$\$
BEGIN
    FOR i IN 1..($1 / $2) LOOP
        INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)
        SELECT u, 'bench', (g % 1000)::text, 'ft.events.bench.v1', 'dev.farutech.bench.v1',
               jsonb_build_object('specversion', '1.0', 'id', u, 'source', '/farutech/bench', 'type', 'dev.farutech.bench.v1',
                                  'time', now(), 'subject', 'bench/' || g, 'data', jsonb_build_object('n', g))
        FROM (SELECT gen_random_uuid() AS u, g FROM generate_series(1, $2) g) x;
        COMMIT;
        PERFORM pg_sleep($3);
    END LOOP;
END
\$\$;
SQL
}
wait_published() {
    while [ "$(sql -c "SELECT count(*) FROM ft_outbox WHERE type = 'dev.farutech.bench.v1' AND published_at IS NULL")" != 0 ]; do
        sleep 0.02
    done
}
# a) throughput: a backlog of $events committed rows, drained by one relay
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
insert_events "$events" 500 0
stop_host
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay
wait_published
sql -c "SELECT format('outbox -> JetStream: a backlog of %s events published in %s ms = %s events/s', count(*),
                      round(extract(epoch FROM max(published_at) - min(published_at)) * 1000),
                      round(count(*) / extract(epoch FROM max(published_at) - min(published_at))))
        FROM ft_outbox WHERE type = 'dev.farutech.bench.v1'"
# b) latency: $events more rows committed 50 at a time, 10,000 a second, while the relay runs
sql -c "DELETE FROM ft_outbox WHERE type = 'dev.farutech.bench.v1'" >/dev/null
insert_events "$events" 50 0.005
wait_published
sql -c "SELECT format('commit-to-publish over %s events offered at ~10,000/s: p50 %s ms, p99 %s ms, max %s ms', count(*),
                      round(percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000)::numeric, 1),
                      round(percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM published_at - created_at) * 1000)::numeric, 1),
                      round(max(extract(epoch FROM published_at - created_at) * 1000)::numeric, 1))
        FROM ft_outbox WHERE type = 'dev.farutech.bench.v1'"
stop_host

# ---- 2. no-op jobs, two workers
# noop_jobs INSTANCES TAG: $jobs no-op jobs spread over INSTANCES instances, queued in one commit;
# jobs/s from the first start to the last finish. Jobs of one instance run in order, so with
# several per instance a worker that draws a later one puts it back (500 ms) while another runs
# the earlier one: both cases are measured.
noop_jobs() {
    sql <<SQL >/dev/null
INSERT INTO ft_customers (legal_name, tax_id, country) VALUES ('Bench jobs $2', 'BJ-$2', 'CO');
INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, status)
SELECT (SELECT id FROM ft_customers WHERE tax_id = 'BJ-$2'), 'j-$2-' || g, 'faulty', 'standard', 'production', 'active'
FROM generate_series(1, $1) g;
INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status)
SELECT customer_id, id, 'faulty', 'basic', 1, 'active' FROM ft_instances WHERE code LIKE 'j-$2-%';
WITH j AS (
    INSERT INTO ft_jobs (instance_id, product_code, kind, correlation_id)
    SELECT i.id, 'faulty', 'features_changed', 'bench-$2' FROM ft_instances i, generate_series(1, $jobs / $1) g
    WHERE i.code LIKE 'j-$2-%' RETURNING id, instance_id
), s AS (INSERT INTO ft_job_steps (job_id, position, name, version) SELECT id, 0, 'noop', 1 FROM j)
INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)
SELECT u, 'instance', j.instance_id::text, 'ft.jobs.features_changed', 'dev.farutech.instance.features_change_requested.v1',
       jsonb_build_object('specversion', '1.0', 'id', u, 'source', '/farutech/control-plane', 'time', now(),
                          'type', 'dev.farutech.instance.features_change_requested.v1', 'subject', 'instances/' || j.instance_id,
                          'data', jsonb_build_object('job_id', j.id, 'instance_id', j.instance_id, 'kind', 'features_changed'))
FROM (SELECT gen_random_uuid() AS u, j.* FROM j) j;
SQL
    while [ "$(sql -c "SELECT count(*) FROM ft_jobs WHERE correlation_id = 'bench-$2' AND status <> 'succeeded'")" != 0 ]; do
        if [ "$(sql -c "SELECT count(*) FROM ft_jobs WHERE correlation_id = 'bench-$2' AND status = 'failed'")" != 0 ]; then
            echo "a job failed:" >&2
            sql -c "SELECT last_error FROM ft_jobs WHERE status = 'failed' LIMIT 3" >&2
            exit 1
        fi
        sleep 0.1
    done
    sql -c "SELECT format('no-op jobs, %s: %s in %s ms with 2 workers = %s jobs/s', '$3', count(*),
                          round(extract(epoch FROM max(finished_at) - min(started_at)) * 1000),
                          round(count(*) / extract(epoch FROM max(finished_at) - min(started_at))))
            FROM ft_jobs WHERE correlation_id = 'bench-$2'"
}
# a first start syncs the catalog (the faulty fixture product) into the database
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
stop_host
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay,worker FT_WORKER_THREADS=2 FT_RATE_LIMIT_RPS=10000000 FT_RATE_LIMIT_BURST=10000000
noop_jobs "$jobs" spread "one per instance"
noop_jobs $((jobs / 4)) ordered "four per instance, in order"

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
while [ "$(sql -c "SELECT count(*) FROM ft_instances WHERE code LIKE 'v-%' AND status <> 'active'")" != 0 ]; do
    if [ "$(sql -c "SELECT count(*) FROM ft_instances WHERE code LIKE 'v-%' AND status = 'failed'")" != 0 ]; then
        echo "a provision failed:" >&2
        sql -c "SELECT last_error FROM ft_jobs WHERE status = 'failed' LIMIT 3" >&2
        exit 1
    fi
    sleep 0.2
done
t1=$(now_ms)
echo "standard-tier vet provisions: $provisions in $((t1 - t0)) ms with 2 workers = $(awk "BEGIN {printf \"%.0f\", $provisions * 60000 / ($t1 - $t0)}") per minute"
