#!/usr/bin/env bash
# Discovery benchmarks D1-D4, each against its anchor in the same run.
# Usage: bench/discovery.sh [d1|d2|d3|d4 ...]   (root; etcd-server, dnsmasq,
# dnsperf, dig; a running dockerd). Prints figures and ratios for
# BENCHMARKS.md. All traffic stays on 127.0.0.1 and the bed's own bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH=${*:-d1 d2 d3 d4}
cargo build --release -q
(cd bench/kvbench && cargo build --release -q)
B=$PWD/target/release/berth
KB=$PWD/bench/kvbench/target/release/kvbench
IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d /tmp/berth-dbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  BERTH_HOME=$WORK/berth "$B" daemon stop >/dev/null 2>&1 || true
  ids=$(docker ps -aq --filter label=berth-dbench=1)
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
  [ "${BED_N:-0}" -gt 0 ] && bed_down
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. bench/lib/bed.sh

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b == 0 ? 0 : a/b)}'; }
wait_http() { for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

berth_up() { # consul-port dns-port
  export BERTH_HOME=$WORK/berth
  "$B" daemon start --nodename dbench --consul-addr 127.0.0.1:$1 --dns-addr 127.0.0.1:$2 >/dev/null
  wait_http "http://127.0.0.1:$1/v1/status/leader"
}

# D1: KV PUT and GET through HTTP, berth's Consul API against etcd 3.4's
# v3 JSON gateway, both fsyncing every commit, same client.
d1_pair() { # label berth-addr etcd-addr
  local label=$1 ba=$2 ea=$3 mode c ops
  for mode in put get; do
    for c in 1 64; do
      ops=$((c == 1 ? 2000 : 20000))
      local rb re
      rb=$("$KB" consul "$ba" $mode $c $ops)
      re=$("$KB" etcd "$ea" $mode $c $ops)
      echo "D1 $label $mode c=$c  berth $(field "$rb" ops_per_s) ops/s p99 $(field "$rb" p99_ms) ms | etcd $(field "$re" ops_per_s) ops/s p99 $(field "$re" p99_ms) ms | throughput $(ratio "$(field "$rb" ops_per_s)" "$(field "$re" ops_per_s)")x, p99 $(ratio "$(field "$re" p99_ms)" "$(field "$rb" p99_ms)")x (goal >= 1.0 both)"
    done
  done
}

d1() {
  berth_up 18501 18601
  etcd --name d1 --data-dir "$WORK/etcd1" --listen-client-urls http://127.0.0.1:12379 \
    --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 \
    --initial-advertise-peer-urls http://127.0.0.1:12380 --initial-cluster d1=http://127.0.0.1:12380 \
    >"$WORK/etcd1.log" 2>&1 &
  PIDS+=($!)
  wait_http http://127.0.0.1:12379/version
  d1_pair "1 manager " 127.0.0.1:18501 127.0.0.1:12379
  kill "${PIDS[-1]}"; "$B" daemon stop >/dev/null

  bed_up 3 "$IMG"
  bed_form_cluster 3
  local cluster="" i
  for i in 0 1 2; do cluster="${cluster:+$cluster,}e$i=http://$(bed_addr $i):2380"; done
  for i in 0 1 2; do
    bed_in $i etcd --name e$i --data-dir "$BED_DIR/node$i/etcd" \
      --listen-client-urls http://$(bed_addr $i):2379 --advertise-client-urls http://$(bed_addr $i):2379 \
      --listen-peer-urls http://$(bed_addr $i):2380 --initial-advertise-peer-urls http://$(bed_addr $i):2380 \
      --initial-cluster "$cluster" >"$BED_DIR/node$i/etcd.log" 2>&1 &
    PIDS+=($!)
  done
  wait_http "http://$(bed_addr 0):2379/health"
  local lead
  lead=$(curl -s "http://$(bed_addr 0):8500/v1/status/leader" | tr -d '"' | cut -d: -f1)
  d1_pair "3 managers" "$lead:8500" "$(bed_addr 0):2379"
}

# D2: DNS queries per second for 1000 service names, against dnsmasq
# serving the same 1000 names from a hosts file.
d2() {
  berth_up 18502 18602
  : >"$WORK/hosts"; : >"$WORK/queries"
  for i in $(seq 1000); do
    local a="10.$((i / 250)).$((i % 250)).1"
    curl -s -X PUT -d "{\"Node\":\"n$i\",\"Address\":\"$a\",\"Service\":{\"Service\":\"s$i\",\"Port\":80}}" \
      http://127.0.0.1:18502/v1/catalog/register >/dev/null
    echo "$a s$i.service.berth" >>"$WORK/hosts"
    echo "s$i.service.berth A" >>"$WORK/queries"
  done
  dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$WORK/hosts" \
    --bind-interfaces --listen-address=127.0.0.1 --port=18653 --user=root --cache-size=10000 2>/dev/null &
  PIDS+=($!)
  sleep 1
  local qb qd
  qb=$(dnsperf -s 127.0.0.1 -p 18602 -d "$WORK/queries" -l 10 -c 4 2>/dev/null | awk '/Queries per second/ {print $4}')
  qd=$(dnsperf -s 127.0.0.1 -p 18653 -d "$WORK/queries" -l 10 -c 4 2>/dev/null | awk '/Queries per second/ {print $4}')
  echo "D2 dnsperf 1000 names: berth $qb qps | dnsmasq $qd qps | ratio $(ratio "$qb" "$qd")x (goal >= 1.0)"
  "$B" daemon stop >/dev/null
}

# D3: from docker run -d (and docker kill) to the change in DNS and in a
# blocking health query, p99 over 100 trials.
d3() {
  berth_up 18503 18603
  local t0 t1 runs=() kills=() blocks=() i idx
  for i in $(seq 100); do
    idx=$(curl -s -o /dev/null -D - "http://127.0.0.1:18503/v1/health/service/d3?passing" | awk -F': ' 'tolower($1)=="x-consul-index" {print $2+0}')
    ( curl -s -o /dev/null "http://127.0.0.1:18503/v1/health/service/d3?passing&index=$idx&wait=30s"; date +%s.%N >"$WORK/woke" ) &
    local blocker=$!
    sleep 0.05
    t0=$(date +%s.%N)
    docker run -d --label berth-dbench=1 -l SERVICE_NAME=d3 -p 127.0.0.1::80 "$IMG" >/dev/null
    until [ -n "$(dig @127.0.0.1 -p 18603 +short +time=1 d3.service.berth)" ]; do :; done
    t1=$(date +%s.%N); runs+=("$(echo "$t1 - $t0" | bc)")
    # Only the blocking query: a bare wait would also wait for D1's etcd.
    wait "$blocker"
    blocks+=("$(echo "$(cat "$WORK/woke") - $t0" | bc)")
    t0=$(date +%s.%N)
    docker kill $(docker ps -q --filter label=berth-dbench=1) >/dev/null
    until dig @127.0.0.1 -p 18603 +time=1 d3.service.berth | grep -q NXDOMAIN; do :; done
    t1=$(date +%s.%N); kills+=("$(echo "$t1 - $t0" | bc)")
    docker rm -f $(docker ps -aq --filter label=berth-dbench=1) >/dev/null
  done
  p99() { sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.99+0.999)]}'; }
  echo "D3 start->DNS p99 $(printf '%s\n' "${runs[@]}" | p99)s, start->blocking query p99 $(printf '%s\n' "${blocks[@]}" | p99)s, kill->DNS p99 $(printf '%s\n' "${kills[@]}" | p99)s (goal <= 1 s; docker run itself included)"
  "$B" daemon stop >/dev/null
}

cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; }

# Runs kvbench's watch mode with $1 watchers; prints "<json> <ticks>", the
# daemon's CPU ticks during the 500 writes only.
d4_run() {
  local pid=$1 n=$2 ready c0 res
  coproc KBP { "$KB" consul 127.0.0.1:18504 watch "$n" 500; }
  read -r ready <&"${KBP[0]}"
  c0=$(cpu_ticks "$pid")
  echo go >&"${KBP[1]}"
  read -r res <&"${KBP[0]}"
  echo "$res $(( $(cpu_ticks "$pid") - c0 ))"
  wait "$KBP_PID" 2>/dev/null || true
}

# D4: one write that wakes exactly one of 10 000 blocking queries, against
# the same writes with one watcher: wake latency and daemon CPU.
d4() {
  berth_up 18504 18604
  local pid a b
  pid=$(cat "$BERTH_HOME/berth.pid")
  a=$(d4_run "$pid" 1); b=$(d4_run "$pid" 10000)
  local ja=${a% *} jb=${b% *}
  echo "D4 500 writes, 1 watcher: wake p50 $(field "$ja" p50_ms) ms p99 $(field "$ja" p99_ms) ms, daemon cpu ${a##* } ticks"
  echo "D4 500 writes, 10000 watchers, exactly one woken each: wake p50 $(field "$jb" p50_ms) ms p99 $(field "$jb" p99_ms) ms, daemon cpu ${b##* } ticks"
  echo "D4 ratio: latency p50 $(ratio "$(field "$jb" p50_ms)" "$(field "$ja" p50_ms)")x, p99 $(ratio "$(field "$jb" p99_ms)" "$(field "$ja" p99_ms)")x, cpu $(ratio "${b##* }" "${a##* }")x (goal <= 1.2)"
  "$B" daemon stop >/dev/null
}

for w in $WHICH; do "$w"; done
