#!/usr/bin/env bash
# How the two proxies' worker threads use their cores under I1's load,
# berth's ingress against haproxy 2.6 in the same run: wrk at C
# connections through each proxy to the same 2 in-memory backends, and
# 3 s of scheduler events in the middle of each run, traced by bpftrace
# (bench/lib/bursts.bt) for the proxy's 2 worker threads: how long each
# runs between switches, how long it waits for a core once woken, and
# whether its long runs (1 ms or more) end preempted or asleep.
# Usage: bench/ingress_bursts.sh [SECONDS] [BERTH_BIN]   (root; wrk, haproxy, bpftrace).
# Env: C (connections, 50).
set -euo pipefail
. "$(dirname "$0")/lib/berth_and_haproxy.sh"
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${C:-50}
[ "$SECS" -ge 6 ] || { echo "SECONDS must be 6 or more (3 s are traced)" >&2; exit 2; }
bench_tools wrk haproxy bpftrace
bench_berth "${2:-}"
WORK=$(mktemp -d /tmp/berth-bursts.XXXXXX)
P1=18861; P2=18862; CONSUL=18863; ING=18864; HAP=18865
trap berth_and_haproxy_stop EXIT
trap 'exit 130' INT TERM
berth_and_haproxy "$B" "$WORK" bursts "$P1" "$P2" "$CONSUL" "$ING" "$HAP"

# The first 2 worker threads' ids.
workers() { proxy_workers "$1" | head -2 | xargs -n1 basename | tr '\n' ' '; }
for who in berth:$(cat "$WORK/home/berth.pid"):$ING haproxy:$HAPROXY_PID:$HAP; do
  IFS=: read -r name pid port <<<"$who"
  read -r t1 t2 <<<"$(workers "$pid")"
  wrk -t 2 -c "$C" -d "${SECS}s" --latency -H 'Host: bench.test' "http://127.0.0.1:$port/" >"$WORK/$name.wrk" &
  wp=$!
  sleep $((SECS / 2 - 1))
  bpftrace bench/lib/bursts.bt "$t1" "$t2" 2>/dev/null | grep -v '^Attaching' >"$WORK/$name.bursts" || true
  wait "$wp"
  echo "== $name, c=$C, threads $t1 $t2: wrk $(awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {print r, "rps, p99", p}' "$WORK/$name.wrk")"
  cat "$WORK/$name.bursts"
done
