#!/usr/bin/env bash
# Where I1's latency goes, berth's ingress against haproxy 2.6 in the same
# run: wrk at C connections through each proxy to the same 2 in-memory
# backends (bench/lib/memory_backends.sh, the same forwarding headers set
# by both), with 2 s of packets on lo captured in the middle of each run.
# From the capture (bench/lib/turnaround.py): the proxy's turnaround (a
# request in -> its answer out, the backend's time included), the
# backends' own turnaround, and the client's (an answer in -> the next
# request out: wrk's own time and its wait for a core). The capture costs
# both proxies some throughput; compare the two in one run only.
# Usage: bench/ingress_turnaround.sh [SECONDS] [BERTH_BIN]   (root; wrk, haproxy, tcpdump, python3).
# Env: C (connections, 50).
set -euo pipefail
. "$(dirname "$0")/lib/memory_backends.sh"
. "$(dirname "$0")/lib/haproxy_anchor.sh"
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${C:-50}
need=()
for c in wrk haproxy tcpdump; do command -v $c >/dev/null || need+=("$c"); done
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
if [ -n "${2:-}" ]; then B=$2; else cargo build --release -q; B=$PWD/target/release/berth; fi
WORK=$(mktemp -d /tmp/berth-turn.XXXXXX)
P1=18871; P2=18872; CONSUL=18873; ING=18874; HAP=18875
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
BERTH_HOME=$WORK/home "$B" daemon start --nodename turn --consul-addr 127.0.0.1:$CONSUL \
  --dns-addr none --ingress-http 127.0.0.1:$ING >/dev/null
for i in 1 2; do
  port=$((i == 1 ? P1 : P2))
  curl -sf -X PUT --data-binary "{\"ID\":\"turn$i\",\"Name\":\"turn\",\"Address\":\"127.0.0.1\",\"Port\":$port,\"Tags\":[\"dns=bench.test\"]}" \
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

for who in berth:$ING haproxy:$HAP; do
  name=${who%%:*}; port=${who#*:}
  wrk -t 2 -c "$C" -d "${SECS}s" --latency -H 'Host: bench.test' "http://127.0.0.1:$port/" >"$WORK/$name.wrk" &
  wp=$!
  sleep $((SECS / 2 - 1))
  timeout 2 tcpdump -i lo -nn -tt -B 131072 -s 80 -w "$WORK/$name.pcap" \
    "(port $port or port $P1 or port $P2) and tcp[tcpflags] & tcp-push != 0" 2>/dev/null || true
  wait "$wp"
  echo "== $name, c=$C: wrk $(awk '/Requests\/sec/ {r=$2} /^ +99%/ {p=$2} END {print r, "rps, p99", p}' "$WORK/$name.wrk")"
  tcpdump -r "$WORK/$name.pcap" -tt -nn 2>/dev/null | python3 bench/lib/turnaround.py "$port" "$P1" "$P2"
done
