#!/usr/bin/env bash
# Ingress benchmark I1: wrk through berth's ingress and through haproxy 2.6,
# in the same run, both routing one Host to the same 2 backend containers
# (busybox httpd) round robin, keep-alive on the client side for both.
# Usage: bench/ingress.sh [SECONDS]   (root; wrk, haproxy, a running dockerd).
# Prints rps and p99 at 50 and 200 connections, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
command -v wrk >/dev/null && command -v haproxy >/dev/null \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk haproxy >/dev/null
cargo build --release -q
B=$PWD/target/release/berth
IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d /tmp/berth-ibench.XXXXXX)
export BERTH_HOME=$WORK/berth
HAPID=
cleanup() {
  [ -n "$HAPID" ] && kill "$HAPID" 2>/dev/null || true
  "$B" 'ibench/*' delete >/dev/null 2>&1 || true
  "$B" daemon stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ING=18680; HAP=18681; P1=18691; P2=18692
"$B" daemon start --nodename ibench --consul-addr none --dns-addr none \
  --ingress-http 127.0.0.1:$ING >/dev/null
for i in 1 2; do
  port=$((i == 1 ? P1 : P2))
  "$B" create ibench/web$i --kw "container#0.image=$IMG" \
    --kw 'container#0.command=/bin/sh -c "mkdir -p /www && echo hello > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"' \
    --kw "container#0.ports=127.0.0.1:$port:80" --kw container#0.service_name=ibench \
    --kw container#0.ingress_hosts=bench.test >/dev/null
  "$B" ibench/web$i start >/dev/null
done
for _ in $(seq 100); do
  [ "$(curl -s -H 'Host: bench.test' http://127.0.0.1:$ING/)" = hello ] && break
  sleep 0.1
done

cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 20000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HAP
  acl bench hdr(host) -i bench.test
  use_backend be if bench
backend be
  balance roundrobin
  server s1 127.0.0.1:$P1
  server s2 127.0.0.1:$P2
CFG
haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 &
HAPID=$!
for _ in $(seq 100); do
  [ "$(curl -s -H 'Host: bench.test' http://127.0.0.1:$HAP/)" = hello ] && break
  sleep 0.1
done

run() { # port connections -> "rps p99_ms"
  wrk -t 2 -c "$2" -d "${SECS}s" --latency -H 'Host: bench.test' "http://127.0.0.1:$1/" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; p99=v}
    /Non-2xx/ {bad=$NF}
    END {printf "%s %s %s\n", rps, p99, (bad == "" ? 0 : bad)}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b == 0 ? 0 : a/b)}'; }
for c in 50 200; do
  read -r brps bp99 bbad < <(run $ING $c)
  read -r hrps hp99 hbad < <(run $HAP $c)
  echo "I1 c=$c  berth $brps rps p99 ${bp99} ms (non-2xx $bbad) | haproxy $hrps rps p99 ${hp99} ms (non-2xx $hbad) | rps $(ratio "$brps" "$hrps")x (goal >= 1.0), p99 $(ratio "$bp99" "$hp99")x of haproxy's (goal <= 1.1)"
done
