#!/usr/bin/env bash
# Replays the single-node fault cases of the hardening issue and prints
# what happens: 1 a full disk, 2 Raft files after a large value comes and
# goes, 3 RSS after a burst of edits, 4 a daemon started without Docker.
# Usage: bench/faults.sh   (needs root, a running dockerd, a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
B=$PWD/target/release/berth
IMG=berth-faults/pause:1
scripts/demo-image "$IMG" >/dev/null
export BERTH_CONSUL_ADDR=none BERTH_DNS_ADDR=none
HOMES=()
new_home() { local h; h=$(mktemp -d /tmp/berth-faults.XXXXXX); HOMES+=("$h"); echo "$h"; }
cleanup() {
  for h in "${HOMES[@]}"; do
    BERTH_HOME=$h $B daemon stop >/dev/null 2>&1 || true
    umount -l "$h" 2>/dev/null || true
    rm -rf "$h"
  done
}
trap cleanup EXIT
pid_of() { $B daemon status --format json 2>/dev/null | sed -n 's/.*"pid": \([0-9]*\).*/\1/p'; }
rss() { awk '/VmRSS/{print $2 " kB"}' "/proc/$1/status"; }

echo "== 1. a full disk"
export BERTH_HOME=$(new_home)
mount -t tmpfs -o size=2m tmpfs "$BERTH_HOME"
$B daemon start --nodename faults$$ >/dev/null
$B create f1/a --kw container#0.image=$IMG >/dev/null
dd if=/dev/zero of="$BERTH_HOME/filler" bs=64k 2>/dev/null || true
for i in $(seq 2000); do
  rc=0; out=$($B f1/a $([ $((i % 2)) = 0 ] && echo freeze || echo thaw) 2>&1) || rc=$?
  if [ "$rc" != 0 ]; then echo "write $i failed (exit $rc): $out"; break; fi
done
echo "reads:  $($B ls | tr '\n' ' ')"
$B daemon status | sed 's/^/status: /' || true
rm -f "$BERTH_HOME/filler"; sleep 1.2
$B f1/a set --kw env=AFTER >/dev/null && echo "after freeing: set ok, env=$($B f1/a get --kw env)"
$B f1/a start >/dev/null && echo "after freeing: start ok"
$B daemon status | sed -n 's/^  store/status after: store/p'
$B f1/a delete >/dev/null; $B daemon stop >/dev/null

echo "== 2. the Raft files after a 10 MB value is set and removed"
export BERTH_HOME=$(new_home)
$B daemon start --nodename faults$$ --resync 2s >/dev/null
$B create f2/a --kw container#0.image=$IMG >/dev/null
f=$BERTH_HOME/etc/namespaces/f2/svc/a.conf
cp "$f" "$f.orig"
python3 -c "import sys; p=sys.argv[1]; t=open(p).read(); open(p,'w').write(t.replace('[DEFAULT]\n','[DEFAULT]\nenv = '+'x'*10_000_000+'\n',1))" "$f"
# The Raft files: the log's segments (raft-*.wal/) and the state machine.
raft_files() { find "$BERTH_HOME" -maxdepth 2 -path "$BERTH_HOME/raft-*" -type f \( -name '*.redb' -o -name '*.wal' \); }
sizes() { raft_files | xargs stat -c '%n %s' | sed "s|$BERTH_HOME/||" | paste -sd' '; }
for _ in $(seq 60); do [ "$($B f2/a get --kw env 2>/dev/null | wc -c)" -gt 1000 ] && break; sleep 0.5; done
echo "set:        $(sizes)"
cp "$f.orig" "$f"
for _ in $(seq 120); do
  total=$(raft_files | xargs stat -c %s | paste -sd+ | bc)
  [ "$total" -lt $((8 << 20)) ] && break; sleep 1
done
echo "removed:    $(sizes)"
$B daemon stop >/dev/null

echo "== 3. RSS after a burst of edits"
export BERTH_HOME=$(new_home)
$B daemon start --nodename faults$$ >/dev/null
pid=$(pid_of)
echo "idle:                    $(rss "$pid")"
for round in 1 2; do
  for i in $(seq 200); do $B create f3/s$i --kw container#0.image=$IMG >/dev/null & (( i % 20 == 0 )) && wait; done; wait
  for j in $(seq 20); do ( for k in $(seq 20); do $B 'f3/*' set --kw env=v$j-$k >/dev/null; done ) & done; wait
  echo "round $round, after 400 bulk sets of 200 objects: $(rss "$pid")"
  $B 'f3/*' delete >/dev/null
  sleep 40
  echo "round $round, 40 s after deleting them:   $(rss "$pid")"
done
$B daemon stop >/dev/null

echo "== 4. a daemon started without Docker"
export BERTH_HOME=$(new_home)
$B daemon start --nodename faults$$ --docker-socket /nonexistent/docker.sock >/dev/null
$B daemon status | sed 's/^/status: /' || true
$B daemon stop >/dev/null
