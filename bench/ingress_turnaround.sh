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
. "$(dirname "$0")/lib/berth_and_haproxy.sh"
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${C:-50}
bench_tools wrk haproxy tcpdump
bench_berth "${2:-}"
WORK=$(mktemp -d /tmp/berth-turnaround.XXXXXX)
P1=18871; P2=18872; CONSUL=18873; ING=18874; HAP=18875
trap berth_and_haproxy_stop EXIT
trap 'exit 130' INT TERM
berth_and_haproxy "$B" "$WORK" turn "$P1" "$P2" "$CONSUL" "$ING" "$HAP"

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
