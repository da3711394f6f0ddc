#!/bin/sh
# Start-up on a database the job benchmarks filled: FT_BENCH_INSTANCES (60,000) instances of the
# fixture product written as bench/lib.sh's noop_instances writes them (with no tenant database
# placement, as instances from before pooled databases), each with a queued no-op job, its step,
# its request in the outbox and its job change row. Then the host is started twice and each time
# the script prints how long it took to answer /health and /ready, and the start's own account
# of its slow steps (migrations, placing unplaced instances): the first start places every
# instance, the second finds nothing left to place.
# Usage: bench/startup.sh (FT_BENCH_INSTANCES=60000)
set -eu
. "$(dirname "$0")/lib.sh"

n=${FT_BENCH_INSTANCES:-60000}

start_fixture_stack
port=$(free_port)
# a first start applies the migrations and writes the fixture product into the catalog
start_host "$port" FT_PLUGIN_DIR="$plugins"
stop_host

t0=$(now_ms)
noop_instances "$n" s
# in ten statements: each job's change takes an advisory lock, and one statement for all would
# need more locks than PostgreSQL's default lock table holds
for k in 0 1 2 3 4 5 6 7 8 9; do
    printf '%s;\n' "$(noop_queue_sql s 1 "split_part(i.code, '-', 3)::int % 10 = $k")" | sql >/dev/null
done
sql -c "ANALYZE"
echo "seeded $n instances, each with a queued job, its step, its outbox row and its change row, in $(($(now_ms) - t0)) ms"
sql -c "SELECT format('rows: %s instances (%s without a placement), %s jobs, %s steps, %s outbox, %s job changes',
               (SELECT count(*) FROM ft_instances), (SELECT count(*) FROM ft_instances WHERE tenant_database_id IS NULL),
               (SELECT count(*) FROM ft_jobs), (SELECT count(*) FROM ft_job_steps), (SELECT count(*) FROM ft_outbox),
               (SELECT count(*) FROM ft_job_changes))"

timed_start() {
    : >"$work/host.log"
    _t0=$(now_ms)
    start_host "$port" FT_PLUGIN_DIR="$plugins"
    _t1=$(now_ms)
    until curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1; do sleep 0.05; done
    _t2=$(now_ms)
    echo "$1: /health after $((_t1 - _t0)) ms, /ready after $((_t2 - _t0)) ms"
    grep -o '"msg":"migrations: [^"]*' "$work/host.log" | sed 's/^"msg":"/  host: /'
    stop_host
}
timed_start "first start (places the instances)"
timed_start "second start"
