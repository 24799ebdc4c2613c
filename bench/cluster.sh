#!/usr/bin/env bash
# Cluster benchmarks C1-C4 on a bed of 3 nodes (network namespaces, each with
# its own dockerd and berth daemon; bench/lib/bed.sh), each against its anchor
# in the same run. Needs root, docker.io, etcd-server/etcd-client (C3).
# Usage: bench/cluster.sh [runs] [c4-services]   (defaults: 10, 1000)
#        SECTIONS="C1 C2" bench/cluster.sh ...      (a subset; BED_KEEP=1 keeps the logs)
# The body is one block, so bash reads it whole: editing the file while a
# run is in progress cannot derail that run.
{
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
SECTIONS=" ${SECTIONS:-C1 C2 C3 C4} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
C4N=${2:-1000}
cargo build --release -q
cargo build --release -q -p berth-raft --example write_bench --example etcd_bench
B=$PWD/target/release/berth
IMG=berth-bench/pause:1
scripts/ensure-dockerd >/dev/null
scripts/demo-image "$IMG" >/dev/null
. bench/lib/bed.sh
trap bed_down EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
runs_on() { # container -> node indexes running it
  local i
  for i in 0 1 2; do
    [ -n "$(bed_docker "$i" ps -q --filter "name=^$1\$" --filter status=running 2>/dev/null)" ] && echo "$i"
  done
  return 0
}
all_up() { # node to ask
  bed_berth "$1" cluster status --format json | python3 -c '
import json,sys; v=json.load(sys.stdin); n=v["nodes"]
sys.exit(0 if len(n)==3 and all(x["state"]=="up" for x in n) else 1)'
}
leader() { bed_berth "$1" cluster status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"] or "")'; }

bed_up 3 "$IMG"
bed_form_cluster 3
bed_wait "cluster" 30 all_up 0

# C1: failover time, node kill -> the service runs on another node.
bed_berth 0 create c1/db --kw container#0.image=$IMG --kw orchestrate=ha >/dev/null
bed_berth 0 c1/db start >/dev/null
C=c1..db.container.0
if want C1; then
c1=(); c1l=(); c1f=()
for _ in $(seq "$RUNS"); do
  bed_wait "c1 owner" 30 test -n "$(runs_on $C)"
  owner=$(runs_on $C | head -1)
  was=$(leader $(( (owner + 1) % 3 )))
  bed_kill "$owner"; t0=$BED_KILLED_AT
  until r=$(runs_on $C) && [ -n "$r" ] && [ "$r" != "$owner" ]; do sleep 0.05; done
  t1=$(now)
  c1+=("$(echo "$t1 - $t0" | bc)")
  # A killed leader adds an election: its runs are reported apart too.
  if [ "$was" = "node$owner" ]; then c1l+=("${c1[-1]}"); else c1f+=("${c1[-1]}"); fi
  echo "  C1 run: node$owner$([ "$was" = "node$owner" ] && echo ' (the leader)') killed at $(date -d @"$t0" +%T.%N), running on node$r after ${c1[-1]}s"
  bed_restart "$owner"
  other=$(( (owner + 1) % 3 ))
  bed_wait "cluster after c1" 60 all_up "$other"
done
C1=$(printf '%s\n' "${c1[@]}" | median)
echo "C1 failover, node kill -> running elsewhere: median ${C1}s over $RUNS runs (goal <= 5 s; swarm defaults ~20 s: ratio $(ratio "$C1" 20))"
[ ${#c1f[@]} -gt 0 ] && echo "   owner not the leader: median $(printf '%s\n' "${c1f[@]}" | median)s over ${#c1f[@]} runs"
[ ${#c1l[@]} -gt 0 ] && echo "   owner was the leader: median $(printf '%s\n' "${c1l[@]}" | median)s over ${#c1l[@]} runs"
true
fi

# C2: leader failover, kill -> next successful write.
if want C2; then
c2=()
for k in $(seq "$RUNS"); do
  l=$(leader 0 || leader 1)
  li=${l#node}
  s=$(( (li + 1) % 3 ))
  bed_kill "$li"; t0=$BED_KILLED_AT
  until bed_berth "$s" c1/db set --kw env=c2-$k >/dev/null 2>&1; do sleep 0.02; done
  t1=$(now)
  c2+=("$(echo "$t1 - $t0" | bc)")
  bed_restart "$li"
  bed_wait "cluster after c2" 60 all_up "$s"
done
C2=$(printf '%s\n' "${c2[@]}" | median)
echo "C2 leader kill -> next write: median ${C2}s over $RUNS runs (goal <= 3 s)"
fi
bed_berth 0 c1/db stop >/dev/null

# C3: desired-state writes/s with fsync on 3 managers vs etcd on the same bed.
if ! want C3; then
  :
elif command -v etcd >/dev/null; then
  l=$(leader 0); li=${l#node}
  for k in $(seq 0 63); do bed_berth 0 create c3/o$k >/dev/null; done
  cluster=""
  for i in 0 1 2; do cluster="$cluster${cluster:+,}e$i=http://$(bed_addr $i):2380"; done
  for i in 0 1 2; do
    bed_in $i etcd --name e$i --data-dir "$BED_DIR/node$i/etcd" \
      --listen-client-urls http://$(bed_addr $i):2379 --advertise-client-urls http://$(bed_addr $i):2379 \
      --listen-peer-urls http://$(bed_addr $i):2380 --initial-advertise-peer-urls http://$(bed_addr $i):2380 \
      --initial-cluster "$cluster" --initial-cluster-state new >"$BED_DIR/node$i/etcd.log" 2>&1 &
    echo $! >"$BED_DIR/node$i/etcd.pid"
    disown
  done
  bed_wait etcd 30 etcdctl --endpoints "http://$(bed_addr 0):2379" endpoint health
  el=$(etcdctl --endpoints "http://$(bed_addr 0):2379,http://$(bed_addr 1):2379,http://$(bed_addr 2):2379" endpoint status -w json \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); print([x["Endpoint"] for x in s if x["Status"]["header"]["member_id"]==x["Status"]["leader"]][0].split("//")[1])')
  for c in 1 64; do
    # etcd's put from compiled code (the anchor), and from the Python loop
    # that also drives berth's API below.
    read -r ew ee < <(bed_in 0 target/release/examples/etcd_bench "$el" $c 10)
    read -r pw pe < <(python3 bench/lib/writers.py etcd "$el" $c 10)
    # The replicated store alone: three managers, mTLS, fsynced redb commits.
    sw=$(bed_in 0 target/release/examples/write_bench $c 10)
    # End to end: `berth <obj> set --kw` through the API (validation, config
    # file and its mirror on every node, Raft).
    read -r bw be < <(python3 bench/lib/writers.py berth "$(bed_home "$li")/berth.sock" $c 10)
    echo "C3 writes/s, $c client(s): etcd put ${ew}/s (errors $ee); berth store ${sw}/s, ratio $(ratio "$sw" "$ew") (goal >= 1.0); from Python: etcd put ${pw}/s (errors $pe), berth set end to end ${bw}/s (errors $be), ratio $(ratio "$bw" "$pw")"
  done
  for i in 0 1 2; do kill "$(cat "$BED_DIR/node$i/etcd.pid")" 2>/dev/null || true; done
else
  echo "C3 skipped: install etcd-server and etcd-client"
fi

# C4: N services created and started across 3 nodes vs the same containers
# with raw docker run, one stream per daemon.
if want C4; then
t0=$(now)
for k in $(seq "$C4N"); do bed_berth $((k % 3)) create c4/s$k --kw container#0.image=$IMG >/dev/null; done
bed_berth 0 'c4/*' start --format json >"$BED_DIR/c4-start.json" 2>&1 \
  || echo "  C4: some starts failed: $(python3 bench/lib/failures.py "$BED_DIR/c4-start.json")"
t1=$(now)
running=0
for i in 0 1 2; do running=$((running + $(bed_docker $i ps -q --filter name=c4.. | wc -l))); done
B4=$(echo "$t1 - $t0" | bc)
bed_berth 0 'c4/*' stop --format json >"$BED_DIR/c4-stop.json" 2>&1 \
  || echo "  C4: some stops failed: $(python3 bench/lib/failures.py "$BED_DIR/c4-stop.json")"
t0=$(now)
for i in 0 1 2; do
  ( for k in $(seq $((C4N / 3))); do bed_docker $i run -d --label berth-bench=raw $IMG >/dev/null; done ) &
done
wait
t1=$(now)
D4=$(echo "$t1 - $t0" | bc)
echo "C4 $C4N services created + started on 3 nodes: berth ${B4}s ($running running), raw docker run x3 streams: ${D4}s, ratio $(ratio "$B4" "$D4")"
fi
exit
}
