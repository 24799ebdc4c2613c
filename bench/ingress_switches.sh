#!/usr/bin/env bash
# CPU time and context switches per request of each proxy's worker
# threads, berth's ingress against haproxy 2.6 in the same run: wrk at C
# connections through each proxy to the same 2 in-memory backends,
# alternated ROUNDS times, the threads' counters read from
# /proc/<pid>/task/*/{stat,status} before and after each run. Voluntary
# switches are sleeps (a park with nothing ready); involuntary ones are
# preemptions and yields. The backends' CPU per request is printed too,
# since how a proxy batches its writes changes the work behind it.
# Usage: bench/ingress_switches.sh [SECONDS] [BERTH_BIN]   (root; wrk, haproxy).
# Env: C (connections, 50), ROUNDS (2).
set -euo pipefail
. "$(dirname "$0")/lib/berth_and_haproxy.sh"
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${C:-50}; ROUNDS=${ROUNDS:-2}
bench_tools wrk haproxy
bench_berth "${2:-}"
WORK=$(mktemp -d /tmp/berth-switches.XXXXXX)
P1=18851; P2=18852; CONSUL=18853; ING=18854; HAP=18855
trap berth_and_haproxy_stop EXIT
trap 'exit 130' INT TERM
berth_and_haproxy "$B" "$WORK" switches "$P1" "$P2" "$CONSUL" "$ING" "$HAP"
HZ=$(getconf CLK_TCK)

# pid -> "cpu_ticks voluntary involuntary", summed over the worker threads
# (berth's ingress-N, the anchor's haproxy threads).
counters() {
  local t ticks=0 vol=0 inv=0
  for t in $(proxy_workers "$1"); do
    ticks=$((ticks + $(awk '{print $14 + $15}' "$t/stat")))
    vol=$((vol + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")))
    inv=$((inv + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status")))
  done
  echo "$ticks $vol $inv"
}
backend_ticks() { awk '{print $14 + $15}' "/proc/$BAH_BACKENDS/stat"; }

declare -A cpu
for r in $(seq "$ROUNDS"); do
  for who in berth:$(cat "$WORK/home/berth.pid"):$ING haproxy:$HAPROXY_PID:$HAP; do
    IFS=: read -r name pid port <<<"$who"
    read -r t0 v0 i0 < <(counters "$pid"); b0=$(backend_ticks)
    out=$(wrk -t 2 -c "$C" -d "${SECS}s" -H 'Host: bench.test' "http://127.0.0.1:$port/")
    read -r t1 v1 i1 < <(counters "$pid"); b1=$(backend_ticks)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    line=$(awk -v who="$name" -v n="$n" -v s="$SECS" -v hz="$HZ" -v t=$((t1 - t0)) -v v=$((v1 - v0)) \
      -v i=$((i1 - i0)) -v b=$((b1 - b0)) 'BEGIN {
      printf "%-7s %6.0f rps  CPU %5.1f us/request  sleeps %.3f/request  preempted or yielded %.3f/request  backends %4.1f us/request\n",
        who, n / s, t * 1e6 / hz / n, v / n, i / n, b * 1e6 / hz / n }')
    echo "round $r: $line"
    cpu[$name]=$(echo "$line" | awk '{print $5}')
  done
  echo "round $r: berth's CPU per request $(awk -v a="${cpu[berth]}" -v b="${cpu[haproxy]}" 'BEGIN {printf "%.2f", a / b}')x haproxy's"
done
