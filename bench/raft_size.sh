#!/usr/bin/env bash
# R1: on-disk size of desired state after 10 000 edits of one object,
# against etcd 3.4 after 10 000 puts of one key, in the same run.
# Usage: bench/raft_size.sh [edits]   (needs root, etcd-server, a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
cargo build --release -q
B=$PWD/target/release/berth
export BERTH_HOME=$(mktemp -d /tmp/berth-size.XXXXXX)
ETCD_DIR=$(mktemp -d /tmp/etcd-size.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
cleanup() {
  $B daemon stop >/dev/null 2>&1 || true
  [ -n "${ETCD_PID:-}" ] && kill "$ETCD_PID" 2>/dev/null || true
  rm -rf "$BERTH_HOME" "$ETCD_DIR"
}
trap cleanup EXIT
BERTH_CONSUL_ADDR=none BERTH_DNS_ADDR=none $B daemon start --nodename size$$ >/dev/null
$B create size/a --kw container#0.image=busybox >/dev/null
etcd --data-dir "$ETCD_DIR" --listen-client-urls "http://127.0.0.1:$PORT" \
  --advertise-client-urls "http://127.0.0.1:$PORT" --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" \
  >/dev/null 2>&1 &
ETCD_PID=$!
python3 - "$BERTH_HOME/berth.sock" "$PORT" "$N" <<'PY'
import base64, http.client, json, socket, sys, time
sock, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock)

b = Unix("berth")
t = time.time()
for i in range(n):
    body = json.dumps({"selector": "size/a", "set": [f"env=edit-{i}"]})
    b.request("POST", "/v1/objects/edit", body, {"content-type": "application/json"})
    r = b.getresponse(); r.read()
    assert r.status == 200, r.status
print(f"berth: {n} edits in {time.time() - t:.1f} s", file=sys.stderr)
for _ in range(100):
    try:
        e = http.client.HTTPConnection("127.0.0.1", port); e.request("GET", "/version"); e.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
t = time.time()
k = base64.b64encode(b"size/a").decode()
for i in range(n):
    v = base64.b64encode(f"edit-{i}".encode()).decode()
    e.request("POST", "/v3/kv/put", json.dumps({"key": k, "value": v}))
    r = e.getresponse(); r.read()
    assert r.status == 200, r.status
print(f"etcd:  {n} puts in {time.time() - t:.1f} s", file=sys.stderr)
PY
# Let the maintenance loop (every 5 s) snapshot, purge and compact.
sleep 20
# The log's segments (raft-*.wal/, sparse: their blocks, du) and the
# state machine's file.
berth_bytes=$(du -sb --apparent-size "$BERTH_HOME"/raft-* | awk '{s += $1} END {print s}')
berth_blocks=$(du -sB1 "$BERTH_HOME"/raft-* | awk '{s += $1} END {print s}')
etcd_bytes=$(du -sb "$ETCD_DIR" | cut -f1)
echo "R1 after $N edits: berth raft files ${berth_bytes} bytes, ${berth_blocks} on disk ($(ls -d "$BERTH_HOME"/raft-* | xargs -n1 basename | paste -sd' ')), etcd data dir ${etcd_bytes} bytes, ratio $(awk -v a="$berth_bytes" -v b="$etcd_bytes" 'BEGIN{printf "%.2f", a/b}') (smaller is better)"
