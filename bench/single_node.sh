#!/usr/bin/env bash
# Single-node benchmarks B1-B4, each against raw Docker in the same run.
# Usage: bench/single_node.sh [runs] [BERTH_BIN]   (needs root, a running dockerd)
# Without BERTH_BIN it builds release berth first.
# Prints medians and ratios; copy the output into BENCHMARKS.md.
set -euo pipefail
. "$(dirname "$0")/lib/tools.sh"
cd "$(dirname "$0")/.."
RUNS=${1:-5}
bench_berth "${2:-}"
IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
export BERTH_HOME=$(mktemp -d /tmp/berth-bench.XXXXXX)
NODE=bench$$
cleanup() {
  $B daemon stop >/dev/null 2>&1 || true
  ids=$(docker ps -aq --filter label=berth.node=$NODE; docker ps -aq --filter label=berth-bench=raw)
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
  rm -rf "$BERTH_HOME"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
$B daemon start --nodename $NODE >/dev/null

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

# B1: one service start vs one docker run -d.
$B create bench1/svc --kw container#0.image=$IMG >/dev/null
b1=(); d1=()
for _ in $(seq "$RUNS"); do
  docker rm -f bench1..svc.container.0 >/dev/null 2>&1 || true
  t0=$(now); $B bench1/svc start >/dev/null; t1=$(now)
  b1+=("$(echo "$t1 - $t0" | bc)")
  $B bench1/svc stop >/dev/null
  t0=$(now); docker run -d --label berth-bench=raw $IMG >/dev/null; t1=$(now)
  d1+=("$(echo "$t1 - $t0" | bc)")
  docker rm -f $(docker ps -aq --filter label=berth-bench=raw) >/dev/null
done
B1=$(printf '%s\n' "${b1[@]}" | median); D1=$(printf '%s\n' "${d1[@]}" | median)
echo "B1 berth start 1 svc: ${B1}s  docker run -d: ${D1}s  ratio $(ratio "$B1" "$D1") (goal <= 1.2)"

# B2: 100 services vs 100 sequential docker run -d.
for i in $(seq 100); do $B create bench2/s$i --kw container#0.image=$IMG >/dev/null; done
b2=(); d2=()
for _ in $(seq "$RUNS"); do
  ids=$(docker ps -aq --filter label=berth.node=$NODE --filter name=bench2); [ -n "$ids" ] && docker rm -f $ids >/dev/null
  t0=$(now); $B 'bench2/*' start >/dev/null; t1=$(now)
  b2+=("$(echo "$t1 - $t0" | bc)")
  $B 'bench2/*' stop >/dev/null
  t0=$(now); for i in $(seq 100); do docker run -d --label berth-bench=raw $IMG >/dev/null; done; t1=$(now)
  d2+=("$(echo "$t1 - $t0" | bc)")
  docker rm -f $(docker ps -aq --filter label=berth-bench=raw) >/dev/null
done
B2=$(printf '%s\n' "${b2[@]}" | median); D2=$(printf '%s\n' "${d2[@]}" | median)
echo "B2 berth start 100 svc: ${B2}s  100 x docker run -d: ${D2}s  ratio $(ratio "$B2" "$D2") (goal <= 0.7)"

# B3: daemon RSS, idle, 100 running services.
$B 'bench2/*' start >/dev/null
sleep 15
pid=$($B daemon status --format json | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
anon=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
file=$(awk '/RssFile/ {print $2}' /proc/$pid/status)
echo "B3 daemon RSS idle with 100 running services: $((rss / 1024)) MB (goal <= 30 MB): $((anon / 1024)) MB private, $((file / 1024)) MB mapped from the binary and libraries"

# B4: berth mon with 1000 defined services.
for i in $(seq 101 1000); do $B create bench2/s$i --kw container#0.image=$IMG >/dev/null; done
b4=()
for _ in $(seq "$RUNS"); do
  t0=$(now); $B mon >/dev/null; t1=$(now)
  b4+=("$(echo "($t1 - $t0) * 1000" | bc)")
done
B4=$(printf '%s\n' "${b4[@]}" | median)
echo "B4 berth mon, 1000 services: ${B4} ms (goal <= 50 ms)"
