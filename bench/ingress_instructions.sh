#!/usr/bin/env bash
# Instructions per proxied request, berth's ingress against haproxy 2.6,
# counted by valgrind's callgrind: unlike wrk's rps on this noisy 2-core
# VM, the count barely moves between runs, so a change of a few percent
# shows. Both proxies route one Host to the same 2 in-memory backends
# (bench/lib/memory_backends.sh) and set the same forwarding headers;
# wrk runs C connections (1: no batching of events) for SECONDS after a
# warm-up, with the counters zeroed in between. User-space instructions
# only: the kernel's share (about 60% of either proxy's CPU here) is not
# counted.
# Usage: bench/ingress_instructions.sh [SECONDS] [BERTH_BIN]   (root; valgrind, wrk, haproxy).
# Env: C (connections, 1).
set -euo pipefail
. "$(dirname "$0")/lib/tools.sh"
. "$(dirname "$0")/lib/memory_backends.sh"
. "$(dirname "$0")/lib/haproxy_anchor.sh"
cd "$(dirname "$0")/.."
SECS=${1:-15}; C=${C:-1}
bench_tools valgrind wrk haproxy
bench_berth "${2:-}"
WORK=$(mktemp -d /tmp/berth-instr.XXXXXX)
P1=18891; P2=18892; CONSUL=18893; ING=18894; HAP=18895
BEID=; VP=
cleanup() {
  [ -n "$VP" ] && kill "$VP" 2>/dev/null || true
  [ -n "$BEID" ] && kill "$BEID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
memory_backends "$WORK" "$P1" "$P2"
BEID=$MEMORY_BACKENDS_PID

# label pid port -> instructions per request, on stdout
measure() {
  local i out n ir
  for i in $(seq 300); do
    [ "$(curl -s -m 5 -H 'Host: bench.test' "http://127.0.0.1:$3/")" = hello ] && break
    [ "$i" = 300 ] && { echo "$1: no answer on $3" >&2; exit 1; }
    sleep 0.2
  done
  wrk -t 1 -c "$C" -d 3s -H 'Host: bench.test' "http://127.0.0.1:$3/" >/dev/null
  callgrind_control -z "$2" >/dev/null 2>&1
  out=$(wrk -t 1 -c "$C" -d "${SECS}s" -H 'Host: bench.test' "http://127.0.0.1:$3/")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  callgrind_control -d "$2" >/dev/null 2>&1
  for i in $(seq 50); do ls "$WORK/$1".out.*.1 >/dev/null 2>&1 && break; sleep 0.2; done
  sleep 1
  ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$WORK/$1".out.*.1)
  awk -v ir="$ir" -v n="$n" 'BEGIN {printf "%.0f\n", ir / n}'
  echo "$1: $n requests, $ir instructions" >&2
}

BERTH_HOME=$WORK/home valgrind --tool=callgrind --callgrind-out-file="$WORK/berth.out.%p" \
  "$B" daemon run --nodename instr --consul-addr 127.0.0.1:$CONSUL --dns-addr none \
  --ingress-http 127.0.0.1:$ING >"$WORK/berth.log" 2>&1 &
VP=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$CONSUL/v1/status/leader" >/dev/null && break; sleep 0.3; done
for i in 1 2; do
  port=$((i == 1 ? P1 : P2))
  curl -sf -X PUT --data-binary "{\"ID\":\"instr$i\",\"Name\":\"instr\",\"Address\":\"127.0.0.1\",\"Port\":$port,\"Tags\":[\"dns=bench.test\"]}" \
    "http://127.0.0.1:$CONSUL/v1/agent/service/register" >/dev/null
done
berth=$(measure berth "$VP" "$ING")
kill "$VP"; wait "$VP" 2>/dev/null || true; VP=

haproxy_anchor_cfg "$WORK/haproxy.cfg" "$HAP" "$P1" "$P2"
valgrind --tool=callgrind --callgrind-out-file="$WORK/haproxy.out.%p" \
  haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
VP=$!
hap=$(measure haproxy "$VP" "$HAP")
echo "instructions per request, c=$C: berth $berth, haproxy $hap, ratio $(awk -v a="$berth" -v b="$hap" 'BEGIN {printf "%.2f", a / b}')x"
