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
. "$(dirname "$0")/lib/memory_backends.sh"
. "$(dirname "$0")/lib/haproxy_anchor.sh"
cd "$(dirname "$0")/.."
SECS=${1:-8}
[ "$SECS" -ge 6 ] || { echo "SECONDS must be 6 or more (3 s are traced)" >&2; exit 2; }; C=${C:-50}
need=()
for c in wrk haproxy bpftrace; do command -v $c >/dev/null || need+=("$c"); done
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
if [ -n "${2:-}" ]; then B=$2; else cargo build --release -q; B=$PWD/target/release/berth; fi
WORK=$(mktemp -d /tmp/berth-bursts.XXXXXX)
P1=18861; P2=18862; CONSUL=18863; ING=18864; HAP=18865
BEID=; HAPID=
cleanup() {
  [ -n "$HAPID" ] && kill "$HAPID" 2>/dev/null || true
  [ -n "$BEID" ] && kill "$BEID" 2>/dev/null || true
  BERTH_HOME=$WORK/home "$B" daemon stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
memory_backends "$WORK" "$P1" "$P2"
BEID=$MEMORY_BACKENDS_PID
BERTH_HOME=$WORK/home "$B" daemon start --nodename bursts --consul-addr 127.0.0.1:$CONSUL \
  --dns-addr none --ingress-http 127.0.0.1:$ING >/dev/null
for i in 1 2; do
  port=$((i == 1 ? P1 : P2))
  curl -sf -X PUT --data-binary "{\"ID\":\"bursts$i\",\"Name\":\"bursts\",\"Address\":\"127.0.0.1\",\"Port\":$port,\"Tags\":[\"dns=bench.test\"]}" \
    "http://127.0.0.1:$CONSUL/v1/agent/service/register" >/dev/null
done
haproxy_anchor_cfg "$WORK/haproxy.cfg" "$HAP" "$P1" "$P2"
# At the daemon's niceness, as in bench/ingress.sh.
nice -n "$(ps -o ni= -p "$(cat "$WORK/home/berth.pid")" | tr -d ' ')" \
  haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 &
HAPID=$!
for port in $ING $HAP; do
  for i in $(seq 100); do
    [ "$(curl -s -H 'Host: bench.test' "http://127.0.0.1:$port/")" = hello ] && break
    [ "$i" = 100 ] && { echo "no answer on $port" >&2; exit 1; }
    sleep 0.1
  done
done

# The worker threads: berth's ingress-N, the anchor's threads.
workers() {
  local t
  for t in /proc/"$1"/task/*; do
    case $(cat "$t/comm") in ingress-*|haproxy) echo "${t##*/}" ;; esac
  done | head -2 | tr '\n' ' '
}
for who in berth:$(cat "$WORK/home/berth.pid"):$ING haproxy:$HAPID:$HAP; do
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
