#!/usr/bin/env bash
# Security benchmarks.
# S1: the latency of `ls` and `set` through the remote API (HTTPS, TLS 1.3,
# a bearer token checked per request) against the unix socket, N requests
# each, one at a time, on a kept-alive connection and on a new connection
# per request (which pays the TLS handshake). Goal: <= 1.1x the socket's,
# plus the TLS round trip.
# S2: the time secret delivery adds to a container start: START_TRIALS
# start/stop cycles of a service with 3 secrets and of the same service
# without, alternated; the medians of `berth start`. Goal: <= 20 ms.
# Usage: bench/security.sh [N] [START_TRIALS]   (root; a running dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500}
TRIALS=${2:-30}
cargo build --release -q
B=$PWD/target/release/berth
WORK=$(mktemp -d /tmp/berth-sec.XXXXXX)
export BERTH_HOME=$WORK/berth
cleanup() {
  "$B" 'sbench/*' delete >/dev/null 2>&1 || true
  "$B" daemon stop >/dev/null 2>&1 || true
  pkill -f "daemon watchdog --home $BERTH_HOME" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

API=17957
"$B" daemon start --nodename sbench --consul-addr none --dns-addr none --api-addr 127.0.0.1:$API >/dev/null
"$B" cluster init --advertise 127.0.0.1:17956 >/dev/null
"$B" user create bench --grant root >/dev/null
TOKEN=$("$B" token create --user bench --ttl 1h --quiet)
"$B" create sbench/web --kw container#0.image=busybox:none >/dev/null
python3 bench/lib/api_latency.py "$BERTH_HOME/berth.sock" 127.0.0.1 $API "$TOKEN" sbench/web "$N"

IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
"$B" create sbench/sec/db >/dev/null
for k in a b c; do head -c 4096 /dev/urandom | base64 -w0 | "$B" sbench/sec/db add --key $k --from - >/dev/null; done
"$B" create sbench/plain --kw "container#0.image=$IMG" --kw topology=flex >/dev/null
"$B" create sbench/withsec --kw "container#0.image=$IMG" --kw topology=flex \
  --kw 'container#0.secrets=db/a:/run/secrets/a db/b:/run/secrets/b db/c:/run/secrets/c' >/dev/null
: >"$WORK/plain"; : >"$WORK/withsec"
for _ in $(seq "$TRIALS"); do
  for svc in plain withsec; do
    t0=$(date +%s%N); "$B" sbench/$svc start >/dev/null; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >>"$WORK/$svc"
    "$B" sbench/$svc stop >/dev/null
  done
done
med() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
p=$(med "$WORK/plain"); w=$(med "$WORK/withsec")
awk -v p="$p" -v w="$w" -v n="$TRIALS" 'BEGIN {printf "S2 start over %d trials: without secrets p50 %.1f ms, with 3 secrets p50 %.1f ms: delivery adds %.1f ms (goal <= 20)\n", n, p/1000, w/1000, (w-p)/1000}'
