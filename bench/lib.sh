# Shared by the benchmark scripts: a private stack, a release host, an nginx baseline, wrk runs.
# Everything listens on 127.0.0.1 and is stopped by the EXIT trap.

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/farutech-bench.XXXXXX")
chmod 755 "$work"
pids=""
daemons="" # servers of a script's own that stop_host leaves running; cleanup stops them

# Ports handed out so far, so that no two servers of a run share one (the host listens with
# SO_REUSEPORT: a second server on its port would silently take half its connections).
# (Recorded in a file: free_port runs in a command substitution's subshell.)
free_port() {
    while :; do
        _p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        grep -qx "$_p" "$work/ports" 2>/dev/null && continue
        echo "$_p" >>"$work/ports"
        echo "$_p"
        return
    done
}

cleanup() {
    for p in $pids $daemons; do kill "$p" 2>/dev/null || true; done
    for p in $pids $daemons; do wait "$p" 2>/dev/null || true; done
    FT_VAR_DIR="$work/stack" "$root/packaging/stack.sh" stop >/dev/null 2>&1 || true
    [ "${FT_BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Server threads (host) and workers (nginx), the same for both: every core but one, which the
# load generator (wrk -t1) keeps, so each side has cores of its own. With as many server threads
# as cores (FT_BENCH_THREADS=$(nproc)), servers and wrk take turns on the same cores and the
# figures measure the scheduler as much as the servers: on 2 cores both servers lose throughput,
# by amounts that differ from run to run and from route to route.
bench_threads=${FT_BENCH_THREADS:-$(n=$(nproc); [ "$n" -gt 1 ] && echo $((n - 1)) || echo 1)}

# build_release [with-fixtures]: the release tree (the test fixture plugins too when asked)
build_release() {
    testing=OFF
    [ "${1:-}" = with-fixtures ] && testing=ON
    cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=$testing >/dev/null
    cmake --build "$root/build/release" -j"$(nproc)" >/dev/null
}

start_stack() {
    export FT_VAR_DIR="$work/stack" FT_PG_PORT=$(free_port) FT_NATS_PORT=$(free_port) FT_NATS_MONITOR_PORT=$(free_port)
    eval "$("$root/packaging/stack.sh" start 2>/dev/null | sed 's/^/export /')"
}

# start_host PORT [extra env assignments...]: runs the release host, logs to $host_log
# ($work/host.log unless the script names another file for a second host)
start_host() {
    _host_port=$1
    _log=${host_log:-$work/host.log}
    shift
    # every wrk connection comes from 127.0.0.1: the per-address limit is lifted (the limiter
    # still runs and is paid for); per-credential limits stay at their defaults unless a
    # script says otherwise
    env FT_HTTP_LISTEN="127.0.0.1:$_host_port" FT_THREADS="$bench_threads" \
        FT_RATE_LIMIT_IP_RPS=10000000 FT_RATE_LIMIT_IP_BURST=10000000 "$@" \
        "$root/build/release/host/farutech-host" >"$_log" 2>&1 &
    pids="$pids $!"
    host_pid=$! # env execs the host: the same process
    # up to three minutes: a host takes a while to start on a database the job benchmarks filled
    for _ in $(seq 1 1800); do
        curl -fs "http://127.0.0.1:$_host_port/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "host did not come up:" >&2
    tail -20 "$_log" >&2
    exit 1
}

# start_fixture_stack: the release tree with the test fixtures, the stack, and $plugins: a
# directory of the products and the faulty fixture (whose no-op step the job benchmarks run)
start_fixture_stack() {
    build_release with-fixtures
    start_stack
    plugins="$work/plugins"
    mkdir -p "$plugins"
    cp "$root"/build/release/products/*.so "$root/build/release/tests/plugins/faulty/faulty.so" "$plugins/"
}

# admin_key: a platform-admin API key for the stack's database (after a host has migrated it)
admin_key() {
    "$root/build/release/host/farutech-host" create-api-key --name bench --role platform-admin 2>/dev/null
}

# start_nginx PORT FILE_NAME CONTENT: nginx serving one static file from $work/www
# (sh has no local variables: the functions' variables start with _ to keep off the callers'.)
start_nginx() {
    _nginx_port=$1
    mkdir -p "$work/www" "$work/nginx"
    printf '%s' "$3" >"$work/www/$2"
    chmod -R a+rX "$work/www"
    cat >"$work/nginx/nginx.conf" <<CONF
worker_processes $bench_threads;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
    # the fastest configuration found for a tiny file on this kind of box: no access log,
    # descriptors cached, plain writes (sendfile costs more than it saves for 15 bytes)
    access_log off;
    default_type application/json;
    sendfile off;
    open_file_cache max=1000;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$_nginx_port;
        root $work/www;
    }
}
CONF
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" >/dev/null 2>&1 &
    pids="$pids $!"
    nginx_pid=$! # the master; its workers serve
    for _ in $(seq 1 50); do
        curl -fs "http://127.0.0.1:$_nginx_port/$2" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "nginx did not come up" >&2
    cat "$work/nginx/error.log" >&2
    exit 1
}

# cpu_ticks PID...: user + system CPU time of the processes (all their threads), in clock ticks
cpu_ticks() {
    for _pid in "$@"; do
        # the fields after the command name's closing parenthesis: utime and stime are the 12th and 13th
        sed 's/^.*) //' "/proc/$_pid/stat" 2>/dev/null | awk '{print $12 + $13}'
    done | awk '{s += $1} END {print s + 0}'
}

# server_pids host|nginx: the processes that do a server's work (nginx: its workers)
server_pids() {
    if [ "$1" = host ]; then echo "$host_pid"; else pgrep -P "$nginx_pid" | tr '\n' ' '; fi
}

# wrk_run URL [wrk args...]: prints "requests_per_sec p99_ms non2xx cpu_us_per_request"; the CPU
# figure (the server's CPU time over the run divided by the requests it answered) needs
# FT_BENCH_SERVER=host|nginx, else it is "?". It is steadier than the rate on a shared box: a
# neighbour's burst costs the server time, not CPU.
wrk_run() {
    _url=$1
    shift
    _spids=$([ -n "${FT_BENCH_SERVER:-}" ] && server_pids "$FT_BENCH_SERVER" || true)
    _t0=$([ -n "$_spids" ] && cpu_ticks $_spids || echo 0)
    _out=$(wrk --latency "$@" "$_url")
    _t1=$([ -n "$_spids" ] && cpu_ticks $_spids || echo 0)
    _rps=$(printf '%s\n' "$_out" | awk '/^Requests\/sec/ {print $2}')
    _p99=$(printf '%s\n' "$_out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}')
    _bad=$(printf '%s\n' "$_out" | awk '/Non-2xx or 3xx responses/ {print $5}')
    _n=$(printf '%s\n' "$_out" | awk '/requests in/ {print $1}')
    _cpu="?"
    [ -n "$_spids" ] && [ "${_n:-0}" -gt 0 ] &&
        _cpu=$(awk -v t=$((_t1 - _t0)) -v hz="$(getconf CLK_TCK)" -v n="$_n" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
    echo "$_rps ${_p99:-?} ${_bad:-0} $_cpu"
}

# ---- the control-plane database and the pipeline (scripts that start the stack)

sql() { psql -X -qAt -v ON_ERROR_STOP=1 "$FT_DATABASE_URL" "$@"; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# stop_host: stops every host started so far (and anything else in $pids, not $daemons)
stop_host() {
    kill $pids 2>/dev/null || true
    wait $pids 2>/dev/null || true
    pids=""
}

# wait_active PREFIX: until every instance whose code starts with PREFIX- is active (exits when one failed)
wait_active() {
    while [ "$(sql -c "SELECT count(*) FROM ft_instances WHERE code LIKE '$1-%' AND status <> 'active'")" != 0 ]; do
        if [ "$(sql -c "SELECT count(*) FROM ft_instances WHERE code LIKE '$1-%' AND status = 'failed'")" != 0 ]; then
            echo "a provision failed:" >&2
            sql -c "SELECT last_error FROM ft_jobs WHERE status = 'failed' LIMIT 3" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# insert_events N ROWS_PER_COMMIT PAUSE_S: N bench events in the outbox, ROWS_PER_COMMIT a commit
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
# insert_paced N RATE: N bench events committed at RATE a second, one commit every 5 ms (the
# statement's clock paces the commits, so the offered rate holds while the database keeps up)
insert_paced() {
    sql <<SQL
DO \$\$
DECLARE
    per int := greatest($2 / 200, 1);
    t0 timestamptz := clock_timestamp();
BEGIN
    FOR i IN 0..($1 / per - 1) LOOP
        INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)
        SELECT u, 'bench', (g % 1000)::text, 'ft.events.bench.v1', 'dev.farutech.bench.v1',
               jsonb_build_object('specversion', '1.0', 'id', u, 'source', '/farutech/bench', 'type', 'dev.farutech.bench.v1',
                                  'time', now(), 'subject', 'bench/' || g, 'data', jsonb_build_object('n', g))
        FROM (SELECT gen_random_uuid() AS u, g FROM generate_series(1, per) g) x;
        COMMIT;
        PERFORM pg_sleep(greatest(extract(epoch FROM t0 + (i + 1) * per * interval '1 second' / $2 - clock_timestamp()), 0));
    END LOOP;
END
\$\$;
SQL
}
wait_published() {
    while [ "$(sql -c "SELECT count(*) FROM ft_outbox_pending")" != 0 ]; do
        sleep 0.25
    done
}
forget_bench_events() {
    sql -c "DELETE FROM ft_outbox_published WHERE seq IN (SELECT seq FROM ft_outbox WHERE type = 'dev.farutech.bench.v1');
            DELETE FROM ft_outbox WHERE type = 'dev.farutech.bench.v1'" >/dev/null
}
# backlog_rate: one line on how fast the relay published the bench events, then forgets them
backlog_rate() {
    sql -c "SELECT format('outbox -> JetStream: a backlog of %s events published in %s ms = %s events/s', count(*),
                          round(extract(epoch FROM max(published_at) - min(published_at)) * 1000),
                          round(count(*) / extract(epoch FROM max(published_at) - min(published_at))))
            FROM ft_outbox JOIN ft_outbox_published USING (seq) WHERE type = 'dev.farutech.bench.v1'"
    forget_bench_events
}

# noop_instances INSTANCES TAG: a customer and INSTANCES active instances j-TAG-1..INSTANCES of the
# faulty fixture product (needs a host that has synced the fixture into the catalog)
noop_instances() {
    sql <<SQL >/dev/null
INSERT INTO ft_customers (legal_name, tax_id, country) VALUES ('Bench jobs $2', 'BJ-$2', 'CO');
INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, status)
SELECT (SELECT id FROM ft_customers WHERE tax_id = 'BJ-$2'), 'j-$2-' || g, 'faulty', 'standard', 'production', 'active'
FROM generate_series(1, $1) g;
INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status)
SELECT customer_id, id, 'faulty', 'basic', 1, 'active' FROM ft_instances WHERE code LIKE 'j-$2-%';
SQL
}

# noop_queue_sql TAG PER_INSTANCE [CONDITION]: the statement that queues PER_INSTANCE no-op jobs (one
# step each, and its request in the outbox, as the API does) on every instance j-TAG-* (i) that
# meets CONDITION; the jobs' correlation id is bench-TAG
noop_queue_sql() {
    cat <<SQL
WITH j AS (
    INSERT INTO ft_jobs (instance_id, product_code, kind, correlation_id)
    SELECT i.id, 'faulty', 'features_changed', 'bench-$1' FROM ft_instances i, generate_series(1, $2) g
    WHERE i.customer_id = (SELECT id FROM ft_customers WHERE tax_id = 'BJ-$1') AND ${3:-true} RETURNING id, instance_id
), s AS (INSERT INTO ft_job_steps (job_id, position, name, version, ordinal) SELECT id, 0, 'noop', 1, 0 FROM j)
INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)
SELECT u, 'instance', j.instance_id::text, 'ft.jobs.features_changed', 'dev.farutech.instance.features_change_requested.v1',
       jsonb_build_object('specversion', '1.0', 'id', u, 'source', '/farutech/control-plane', 'time', now(),
                          'type', 'dev.farutech.instance.features_change_requested.v1', 'subject', 'instances/' || j.instance_id,
                          'data', jsonb_build_object('job_id', j.id, 'instance_id', j.instance_id, 'kind', 'features_changed'))
FROM (SELECT gen_random_uuid() AS u, j.* FROM j) j
SQL
}

# noop_wait TAG: until every job of bench-TAG succeeded (exits when one failed)
noop_wait() {
    while [ "$(sql -c "SELECT count(*) FROM ft_jobs WHERE correlation_id = 'bench-$1' AND status <> 'succeeded'")" != 0 ]; do
        if [ "$(sql -c "SELECT count(*) FROM ft_jobs WHERE correlation_id = 'bench-$1' AND status = 'failed'")" != 0 ]; then
            echo "a job failed:" >&2
            sql -c "SELECT last_error FROM ft_jobs WHERE status = 'failed' LIMIT 3" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# noop_jobs JOBS INSTANCES TAG LABEL: JOBS no-op jobs of the faulty fixture product spread over
# INSTANCES instances, queued in one commit; jobs/s from the first start to the last finish (needs a
# host with the worker and relay roles that has synced the fixture into the catalog). Jobs of one
# instance run in order, so with several per instance a worker that draws a later one puts it back
# (500 ms) while another runs the earlier one.
noop_jobs() {
    noop_instances "$2" "$3"
    printf '%s;\n' "$(noop_queue_sql "$3" $(($1 / $2)))" | sql >/dev/null
    noop_wait "$3"
    sql -c "SELECT format('no-op jobs, %s: %s in %s ms = %s jobs/s', '$4', count(*),
                          round(extract(epoch FROM max(finished_at) - min(started_at)) * 1000),
                          round(count(*) / extract(epoch FROM max(finished_at) - min(started_at))))
            FROM ft_jobs WHERE correlation_id = 'bench-$3'"
}
