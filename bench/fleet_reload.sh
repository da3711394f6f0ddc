#!/bin/sh
# Fleet reload convergence: three hosts on one database, 50 forced fleet-wide reloads of a
# product sent to the first. Reports p50/p99 of the time from the POST to the answer with every
# host reported, and of each host's own load time (coordinator and the others apart).
# Usage: bench/fleet_reload.sh  (FT_BENCH_RELOADS=50 FT_BENCH_PRODUCT=vet FT_BENCH_HOSTS=3)
set -eu
. "$(dirname "$0")/lib.sh"

reloads=${FT_BENCH_RELOADS:-50}
product=${FT_BENCH_PRODUCT:-vet}
nhosts=${FT_BENCH_HOSTS:-3}

build_release
start_stack
ports=""
for i in $(seq 1 "$nhosts"); do
    port=$(free_port)
    ports="$ports $port"
    # each host its own log; one HTTP thread each: the hosts share the box
    host_log="$work/host-$i.log" start_host "$port" FT_PLUGIN_DIR="$root/build/release/products" FT_THREADS=1 \
        FT_ROLES=api FT_RATE_LIMIT_RPS=0
done
set -- $ports
key=$(admin_key)
python3 - "$1" "$product" "$reloads" "$key" "$nhosts" <<'PY'
import http.client, json, sys, time
port, product, n, key, nhosts = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
auth = {"Authorization": "Bearer " + key}

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", path, headers=auth)
    return json.loads(c.getresponse().read())

deadline = time.monotonic() + 60
while len(get("/api/v1/hosts")["hosts"]) < nhosts:
    if time.monotonic() > deadline:
        sys.exit("the hosts did not all turn live")
    time.sleep(0.2)
totals, own, others, failed = [], [], [], 0
for i in range(n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.monotonic()
    c.request("POST", f"/api/v1/plugins/{product}/reload?force=true", headers=auth)
    r = c.getresponse()
    body = json.loads(r.read())
    totals.append((time.monotonic() - t) * 1000)
    hosts = body.get("hosts", [])
    if r.status != 200 or len(hosts) != nhosts:
        failed += 1
        continue
    for h in hosts:
        for res in h["results"]:
            (own if h["coordinator"] else others).append(res["load_ms"])

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")

print(f"fleet reloads: {n} of {product} across {nhosts} hosts, {failed} not answered 200 by every host")
print(f"POST to answer with every host reported: p50 {pct(totals, 50):.1f} ms, p99 {pct(totals, 99):.1f} ms, "
      f"max {max(totals):.1f} ms")
print(f"load time on the coordinator: p50 {pct(own, 50):.1f} ms, p99 {pct(own, 99):.1f} ms")
print(f"load time on the other hosts: p50 {pct(others, 50):.1f} ms, p99 {pct(others, 99):.1f} ms")
PY
