#!/bin/sh
# 200 forced reloads of a product while wrk drives the catalog API. Reports non-2xx answers
# (goal 0), the catalog's p99 with and without reloads, and the swap time of each reload
# (goal < 50 ms). Usage: bench/reload.sh  (FT_BENCH_RELOADS=200 FT_BENCH_PRODUCT=vet)
set -eu
. "$(dirname "$0")/lib.sh"

reloads=${FT_BENCH_RELOADS:-200}
product=${FT_BENCH_PRODUCT:-vet}
conns=${FT_BENCH_CONNECTIONS:-50}

build_release
start_stack
port=$(free_port)
start_host "$port" FT_PLUGIN_DIR="$root/build/release/products"
url="http://127.0.0.1:$port/api/v1/products/$product"
key=$(admin_key)
# one operator credential drives the load: its own limit is lifted like the address's
kill $pids 2>/dev/null || true
wait 2>/dev/null || true
pids=""
start_host "$port" FT_PLUGIN_DIR="$root/build/release/products" FT_RATE_LIMIT_RPS=10000000 FT_RATE_LIMIT_BURST=10000000
auth="Authorization: Bearer $key"

wrk -t1 -c"$conns" -d2s -H "$auth" "$url" >/dev/null
set -- $(wrk_run "$url" -t1 -c"$conns" -d10s -H "$auth")
echo "without reloads: $1 req/s, p99 $2 ms, non-2xx $3"

# wrk runs while the reloads go on; it is stopped as soon as they are done
wrk --latency -t1 -c"$conns" -d120s -H "$auth" "$url" >"$work/wrk-reload.out" 2>&1 &
wrkpid=$!
sleep 1
python3 - "$port" "$product" "$reloads" "$key" <<'PY'
import http.client, json, sys, time
port, product, n, key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
swaps, totals, failed = [], [], 0
for i in range(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t = time.monotonic()
    c.request("POST", f"/api/v1/plugins/{product}/reload?force=true", headers={"Authorization": "Bearer " + key})
    r = c.getresponse()
    body = r.read()
    totals.append((time.monotonic() - t) * 1000)
    if r.status != 200:
        failed += 1
        continue
    swaps.append(json.loads(body)["results"][0]["swap_ms"])
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")
print(f"reloads: {n} done, {failed} failed")
print(f"swap time: p50 {pct(swaps, 50):.3f} ms, p99 {pct(swaps, 99):.3f} ms, max {max(swaps):.3f} ms")
print(f"whole reload (load, init, catalog sync, swap): p50 {pct(totals, 50):.1f} ms, p99 {pct(totals, 99):.1f} ms")
PY
kill -INT "$wrkpid" 2>/dev/null || true
wait "$wrkpid" 2>/dev/null || true
out=$(cat "$work/wrk-reload.out")
rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec/ {print $2}')
p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')
bad=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses/ {print $5}')
errs=$(printf '%s\n' "$out" | awk '/Socket errors/ {print}')
echo "with reloads: $rps req/s, p99 $p99, non-2xx ${bad:-0}${errs:+, $errs}"
gens=$(curl -s -H "$auth" "http://127.0.0.1:$port/api/v1/plugins" | python3 -c "import json,sys; print(sorted(p['generation'] for p in json.load(sys.stdin)['plugins'] if p['product']=='$product'))")
echo "generations of $product still loaded after the run: $gens"
