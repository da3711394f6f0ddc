#!/bin/sh
# GET /health on farutech-host against nginx serving a static file of the same size, in the
# same run on the same box, alternating rounds so both see the same noise.
# Usage: bench/health.sh   (FT_BENCH_DURATION=10s FT_BENCH_ROUNDS=3 FT_BENCH_CONNECTIONS=50)
set -eu
. "$(dirname "$0")/lib.sh"

duration=${FT_BENCH_DURATION:-10s}
rounds=${FT_BENCH_ROUNDS:-3}
conns=${FT_BENCH_CONNECTIONS:-50}

build_release
start_stack
hport=$(free_port)
nport=$(free_port)
start_host "$hport"
start_nginx "$nport" health '{"status":"ok"}'

echo "wrk -t1 -c$conns -d$duration, $rounds rounds, host and nginx with $bench_threads threads/workers"
wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$hport/health" >/dev/null
wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$nport/health" >/dev/null
hsum=0
nsum=0
hcpu=0
ncpu=0
i=1
while [ "$i" -le "$rounds" ]; do
    set -- $(FT_BENCH_SERVER=nginx wrk_run "http://127.0.0.1:$nport/health" -t1 -c"$conns" -d"$duration")
    echo "round $i nginx  static : $1 req/s  p99 $2 ms  CPU $4 us/request"
    nsum=$(awk "BEGIN {print $nsum + $1}")
    ncpu=$(awk "BEGIN {print $ncpu + $4}")
    set -- $(FT_BENCH_SERVER=host wrk_run "http://127.0.0.1:$hport/health" -t1 -c"$conns" -d"$duration")
    echo "round $i host /health  : $1 req/s  p99 $2 ms  non-2xx $3  CPU $4 us/request"
    hsum=$(awk "BEGIN {print $hsum + $1}")
    hcpu=$(awk "BEGIN {print $hcpu + $4}")
    i=$((i + 1))
done
awk -v n="$nsum" -v h="$hsum" -v r="$rounds" \
    'BEGIN {printf "mean nginx %.0f req/s, host %.0f req/s, ratio host/nginx %.3f\n", n / r, h / r, h / n}'
# the CPU each server spends per request (all its threads), a figure less moved by neighbours
awk -v n="$ncpu" -v h="$hcpu" -v r="$rounds" \
    'BEGIN {printf "mean CPU per request: nginx %.2f us, host %.2f us, ratio nginx/host %.3f\n", n / r, h / r, n / h}'
