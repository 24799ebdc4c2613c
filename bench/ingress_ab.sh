#!/usr/bin/env bash
# Two berth builds' ingresses compared in the same run (the A/B pairs in
# BENCHMARKS.md, I1/I2): a daemon of each, in front of the same 2
# in-memory haproxy backends, registered through each daemon's Consul API;
# wrk against A then B, ROUNDS times. Prints rps, p99 and the daemon's CPU
# time per request for each run, then the median ratio B/A. On this
# 2-core VM a proxy's rps varies by 20% between runs minutes apart, so
# only pairs run back to back tell a change from noise.
# Usage: bench/ingress_ab.sh BIN_A BIN_B [SECONDS]   (root; wrk, haproxy).
# Env: ROUNDS (4), C (connections, 50), HOGS (0: how many CPU-bound busy
# loops run beside, at niceness 0, as a container crunching numbers would).
set -euo pipefail
. "$(dirname "$0")/lib/tools.sh"
. "$(dirname "$0")/lib/memory_backends.sh"
A=${1:?BIN_A}; B=${2:?BIN_B}; SECS=${3:-5}; ROUNDS=${ROUNDS:-4}; C=${C:-50}
bench_tools wrk haproxy
WORK=$(mktemp -d /tmp/berth-ab.XXXXXX)
P1=18791; P2=18792
BEID=
HOG_PIDS=()
cleanup() {
  [ ${#HOG_PIDS[@]} -gt 0 ] && kill "${HOG_PIDS[@]}" 2>/dev/null || true
  [ -n "$BEID" ] && kill "$BEID" 2>/dev/null || true
  BERTH_HOME=$WORK/a "$A" daemon stop >/dev/null 2>&1 || true
  BERTH_HOME=$WORK/b "$B" daemon stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
memory_backends "$WORK" "$P1" "$P2"
BEID=$MEMORY_BACKENDS_PID
start() { # binary home consul-port ingress-port
  BERTH_HOME=$2 "$1" daemon start --nodename "ab$3" --consul-addr "127.0.0.1:$3" \
    --dns-addr none --ingress-http "127.0.0.1:$4" >/dev/null
  local i port
  for i in 1 2; do
    port=$((i == 1 ? P1 : P2))
    curl -sf -X PUT --data-binary "{\"ID\":\"ab$i\",\"Name\":\"ab\",\"Address\":\"127.0.0.1\",\"Port\":$port,\"Tags\":[\"dns=bench.test\"]}" \
      "http://127.0.0.1:$3/v1/agent/service/register" >/dev/null
  done
  for _ in $(seq 100); do
    [ "$(curl -s -H 'Host: bench.test' "http://127.0.0.1:$4/")" = hello ] && return
    sleep 0.1
  done
  echo "no route through $1" >&2
  exit 1
}
start "$A" "$WORK/a" 18793 18794
start "$B" "$WORK/b" 18795 18796
PA=$(cat "$WORK/a/berth.pid"); PB=$(cat "$WORK/b/berth.pid")
for _ in $(seq "${HOGS:-0}"); do
  nice -n 0 sh -c 'while :; do :; done' &
  HOG_PIDS+=($!)
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
ratios=()
for _ in $(seq "$ROUNDS"); do
  line=""; ra=0
  for who in A B; do
    if [ $who = A ]; then pid=$PA; port=18794; else pid=$PB; port=18796; fi
    t0=$(ticks "$pid")
    out=$(wrk -t $((C < 2 ? C : 2)) -c "$C" -d "${SECS}s" --latency -H 'Host: bench.test' "http://127.0.0.1:$port/")
    t1=$(ticks "$pid")
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '/^ +99%/ {print $2}')
    us=$(awk -v t=$((t1 - t0)) -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
    line+="$who $rps rps, p99 $p99, $us us CPU/request   "
    if [ $who = A ]; then ra=$rps; else ratios+=("$(awk -v a="$ra" -v b="$rps" 'BEGIN {printf "%.3f", b / a}')"); fi
  done
  echo "$line"
done
echo "B/A rps, median of $ROUNDS pairs: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
