#!/usr/bin/env bash
# Ingress benchmark I4: route-change latency, from a container's start (its
# State.StartedAt in Docker) to the first request the ingress serves from
# it, over TRIALS stop/start cycles of one service; prints p50 and p99.
# There is no anchor here: Traefik, whose latency the issue cites, is not
# packaged in Debian; the goal is absolute (p99 <= 1 s).
# Usage: bench/ingress_route.sh [TRIALS]   (root; a running dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-50}
cargo build --release -q
B=$PWD/target/release/berth
IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
WORK=$(mktemp -d /tmp/berth-route.XXXXXX)
export BERTH_HOME=$WORK/berth
cleanup() {
  "$B" 'iroute/*' delete >/dev/null 2>&1 || true
  "$B" daemon stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ING=18880; P1=18891
"$B" daemon start --nodename iroute --consul-addr none --dns-addr none \
  --ingress-http 127.0.0.1:$ING >/dev/null
"$B" create iroute/web --kw "container#0.image=$IMG" \
  --kw 'container#0.command=/bin/sh -c "mkdir -p /www && echo hello > /www/index.html; trap \"exit 0\" TERM; /bin/busybox httpd -f -p 80 -h /www & wait"' \
  --kw "container#0.ports=127.0.0.1:$P1:80" --kw container#0.ingress_hosts=route.test >/dev/null
: >"$WORK/lat"
for _ in $(seq "$TRIALS"); do
  "$B" iroute/web start >/dev/null &
  # Poll every 5 ms until the ingress serves the new instance.
  until [ "$(curl -s -m 1 -H 'Host: route.test' http://127.0.0.1:$ING/)" = hello ]; do sleep 0.005; done
  served=$(date +%s.%N)
  wait
  started=$(docker inspect -f '{{.State.StartedAt}}' iroute..web.container.0)
  python3 -c "import sys,datetime as d; s=sys.argv[1]; b,f=s.rstrip('Z').split('.'); t=d.datetime.strptime(b,'%Y-%m-%dT%H:%M:%S').replace(tzinfo=d.timezone.utc).timestamp()+float('0.'+f); print('%.1f' % ((float(sys.argv[2])-t)*1000))" "$started" "$served" >>"$WORK/lat"
  "$B" iroute/web stop >/dev/null
done
sort -n "$WORK/lat" | awk '{v[NR]=$1} END {p50=v[int((NR+1)/2)]; i=int(NR*0.99+0.999); if (i>NR) i=NR; printf "I4 route-change latency over %d starts: p50 %s ms, p99 %s ms, max %s ms (goal p99 <= 1000)\n", NR, p50, v[i], v[NR]}'
