#!/bin/sh
# The job engine side by side with pg-boss, on the same PostgreSQL (the stack's, same settings):
#   1. rounds taken in turn: $jobs no-op jobs of ours (queued in one commit, one per instance, each a
#      real job whose step is recorded; one host with the api, relay and worker roles), then $jobs
#      no-op pg-boss jobs ($pgboss_workers workers x batch $pgboss_batch); the median jobs/s of each and
#      the ratio;
#   2. ours at 1, 2 and 4 worker processes (a host with the api and relay roles, plus N hosts with
#      the worker role);
#   3. the delay from the commit that queued a job to the job done (p50, p99) with jobs offered at
#      half the peak rate of 1.
# pg-boss $pgboss_version is installed by npm into build/pgboss (never committed).
# Usage: bench/jobs.sh  (FT_BENCH_JOBS=20000 FT_BENCH_ROUNDS=3 FT_BENCH_SCALE_JOBS=20000
#                        FT_BENCH_WORKER_THREADS=2 FT_BENCH_DELAY_SECONDS=20)
set -eu
. "$(dirname "$0")/lib.sh"

jobs=${FT_BENCH_JOBS:-20000}
rounds=${FT_BENCH_ROUNDS:-3}
scale_jobs=${FT_BENCH_SCALE_JOBS:-$jobs}
threads=${FT_BENCH_WORKER_THREADS:-2}
delay_seconds=${FT_BENCH_DELAY_SECONDS:-20}
pgboss_version=12.5.0
pgboss_workers=10
pgboss_batch=100

pgboss_dir="$root/build/pgboss"
if [ ! -f "$pgboss_dir/node_modules/pg-boss/package.json" ] ||
    [ "$(node -p "require('$pgboss_dir/node_modules/pg-boss/package.json').version")" != "$pgboss_version" ]; then
    mkdir -p "$pgboss_dir"
    echo '{"private": true}' >"$pgboss_dir/package.json"
    (cd "$pgboss_dir" && npm install --no-audit --no-fund --loglevel=error "pg-boss@$pgboss_version" >/dev/null 2>&1)
fi

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
rate_of() { awk '{print $(NF - 1)}'; } # the jobs/s of a noop_jobs line

start_fixture_stack
port=$(free_port)
# a first start syncs the catalog (the faulty fixture product) into the database
start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api
stop_host

# start_pipeline WORKER_PROCESSES: a host with the api and relay roles and the worker role too (0),
# or beside N hosts with the worker role only
start_pipeline() {
    if [ "$1" = 0 ]; then
        start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay,worker FT_WORKER_THREADS="$threads"
        return
    fi
    start_host "$port" FT_PLUGIN_DIR="$plugins" FT_ROLES=api,relay
    for _w in $(seq 1 "$1"); do
        host_log="$work/worker-$_w.log" start_host "$(free_port)" FT_PLUGIN_DIR="$plugins" FT_ROLES=worker \
            FT_WORKER_THREADS="$threads"
    done
}

# ---- 1. ours and pg-boss in turn
start_pipeline 0
: >"$work/ours"
: >"$work/pgboss"
for r in $(seq 1 "$rounds"); do
    line=$(noop_jobs "$jobs" "$jobs" "round-$r" "round $r, one host, $threads worker threads")
    echo "$line"
    echo "$line" | rate_of >>"$work/ours"
    set -- $(FT_PGBOSS_DIR="$pgboss_dir" node "$root/bench/pgboss.mjs" "$FT_DATABASE_URL" "$jobs" "$pgboss_workers" "$pgboss_batch")
    rate=$(awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}')
    echo "pg-boss $pgboss_version, round $r, $pgboss_workers workers x batch $pgboss_batch: $1 in $(awk -v s="$2" 'BEGIN {printf "%.0f", s * 1000}') ms = $rate jobs/s"
    echo "$rate" >>"$work/pgboss"
done
stop_host
ours=$(median <"$work/ours")
theirs=$(median <"$work/pgboss")
echo "median of $rounds rounds of $jobs no-op jobs: ours $ours jobs/s, pg-boss $theirs jobs/s, ratio $(awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "%.3f", a / b}')"

# ---- 2. how it scales with worker processes
peak=0
for p in 1 2 4; do
    start_pipeline "$p"
    line=$(noop_jobs "$scale_jobs" "$scale_jobs" "scale-$p" "$p worker process(es) x $threads threads")
    echo "$line"
    rate=$(echo "$line" | rate_of)
    [ "$p" = 1 ] && peak=$rate
    stop_host
done

# ---- 3. commit-to-done delay at half the peak rate of one worker process
offered=$((peak / 2 > 0 ? peak / 2 : 1))
total=$((offered * delay_seconds))
per_commit=$(((offered + 99) / 100)) # a commit every 10 ms or so
commits=$(((total + per_commit - 1) / per_commit))
start_pipeline 1
noop_instances $((commits * per_commit)) delay
sql <<SQL
DO \$\$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR b IN 0..($commits - 1) LOOP
        $(noop_queue_sql delay 1 "i.code IN (SELECT 'j-delay-' || x FROM generate_series(b * $per_commit + 1, (b + 1) * $per_commit) x)");
        COMMIT;
        PERFORM pg_sleep(greatest(0, extract(epoch FROM t0 + (b + 1) * interval '1 second' * $per_commit / $offered - clock_timestamp())));
    END LOOP;
END
\$\$;
SQL
noop_wait delay
sql -c "SELECT format('commit-to-done delay, %s jobs offered at %s jobs/s (half of 1 worker process''s peak): p50 %s ms, p99 %s ms, max %s ms',
                      count(*), $offered,
                      round(percentile_disc(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)::numeric, 1),
                      round(percentile_disc(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at) * 1000)::numeric, 1),
                      round(max(extract(epoch FROM finished_at - created_at) * 1000)::numeric, 1))
        FROM ft_jobs WHERE correlation_id = 'bench-delay'"
