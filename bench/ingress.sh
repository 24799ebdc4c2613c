#!/usr/bin/env bash
# Ingress benchmarks I1 and I2: wrk through berth's ingress and through
# haproxy 2.6, in the same run, both routing one Host to the same 2 backend
# containers (busybox httpd) round robin, keep-alive on the client side for
# both; I1 over plain HTTP, I2 over TLS (the same self-signed certificate,
# TLS 1.3, for both).
# BACKENDS=host: the 2 backends are instead a second haproxy on the host
# answering from memory with keep-alive (registered through the Consul API
# with a dns= tag), so the figures are the proxies' own rather than busybox
# httpd's, which accepts 9 pending connections and keeps none alive.
# haproxy sets the forwarding headers berth sets on every request
# (X-Forwarded-For, -Proto, -Host and Forwarded, replacing the client's),
# so both do the same work and the backends parse the same requests;
# ANCHOR_HEADERS=none leaves them out of haproxy's configuration.
# Usage: [BACKENDS=host] bench/ingress.sh [SECONDS] [BERTH_BIN]   (root; wrk, haproxy, openssl, a running dockerd).
# Without BERTH_BIN it builds release berth first.
# Prints the medians of ROUNDS (3) alternated runs of rps and p99 at 50 and
# 200 connections, and the ratios; each run's figures go to stderr.
# ONLY=I1 or ONLY=I2 runs one of the two.
set -euo pipefail
. "$(dirname "$0")/lib/tools.sh"
. "$(dirname "$0")/lib/memory_backends.sh"
. "$(dirname "$0")/lib/haproxy_anchor.sh"
cd "$(dirname "$0")/.."
SECS=${1:-10}
bench_tools wrk haproxy
bench_berth "${2:-}"
IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d /tmp/berth-ibench.XXXXXX)
export BERTH_HOME=$WORK/berth
HAPID=
BEID=
HOSTS_ADDED=
cleanup() {
  [ -n "$BEID" ] && kill "$BEID" 2>/dev/null || true
  [ -n "$HOSTS_ADDED" ] && sed -i '/^127.0.0.1 bench.test$/d' /etc/hosts
  [ -n "$HAPID" ] && kill "$HAPID" 2>/dev/null || true
  "$B" 'ibench/*' delete >/dev/null 2>&1 || true
  "$B" daemon stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ING=18680; HAP=18681; P1=18691; P2=18692; INGS=18682; HAPS=18683
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
cat "$WORK/tls.pem" "$WORK/tls.key" >"$WORK/haproxy.pem"
CONSUL=18690
"$B" daemon start --nodename ibench --consul-addr 127.0.0.1:$CONSUL --dns-addr none \
  --ingress-http 127.0.0.1:$ING --ingress-https 127.0.0.1:$INGS >/dev/null
if [ "${BACKENDS:-containers}" = host ]; then
  memory_backends "$WORK" "$P1" "$P2"
  BEID=$MEMORY_BACKENDS_PID
  for i in 1 2; do
    port=$((i == 1 ? P1 : P2))
    curl -sf -X PUT --data-binary "{\"ID\":\"ibench$i\",\"Name\":\"ibench\",\"Address\":\"127.0.0.1\",\"Port\":$port,\"Tags\":[\"dns=bench.test\"],\"Meta\":{\"berth-ingress-tls\":\"$WORK/tls.pem\\n$WORK/tls.key\"}}" \
      "http://127.0.0.1:$CONSUL/v1/agent/service/register" >/dev/null
  done
else
  for i in 1 2; do
    port=$((i == 1 ? P1 : P2))
    "$B" create ibench/web$i --kw "container#0.image=$IMG" \
      --kw 'container#0.command=/bin/sh -c "mkdir -p /www && echo hello > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"' \
      --kw "container#0.ports=127.0.0.1:$port:80" --kw container#0.service_name=ibench \
      --kw container#0.ingress_hosts=bench.test \
      --kw "container#0.ingress_tls_cert=$WORK/tls.pem" --kw "container#0.ingress_tls_key=$WORK/tls.key" >/dev/null
    "$B" ibench/web$i start >/dev/null
  done
fi
for _ in $(seq 100); do
  [ "$(curl -s -H 'Host: bench.test' http://127.0.0.1:$ING/)" = hello ] && break
  sleep 0.1
done

haproxy_anchor_cfg "$WORK/haproxy.cfg" "$HAP" "$P1" "$P2" "$HAPS" "$WORK/haproxy.pem"
# At the daemon's niceness (-10 by default), so neither proxy gets more of
# the two cores than the other against wrk and the backends.
nice -n "$(ps -o ni= -p "$(cat "$BERTH_HOME/berth.pid")" | tr -d ' ')" haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 &
HAPID=$!
for _ in $(seq 100); do
  [ "$(curl -s -H 'Host: bench.test' http://127.0.0.1:$HAP/)" = hello ] && break
  sleep 0.1
done

run() { # port connections [scheme] -> "rps p99_ms non2xx"
  local url="http://127.0.0.1:$1/"
  [ "${3:-http}" = https ] && url="https://bench.test:$1/"
  wrk -t 2 -c "$2" -d "${SECS}s" --latency -H 'Host: bench.test' "$url" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; p99=v}
    /Non-2xx/ {bad=$NF}
    END {printf "%s %s %s\n", rps, p99, (bad == "" ? 0 : bad)}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b == 0 ? 0 : a/b)}'; }
# wrk resolves bench.test through /etc/hosts for the TLS name (SNI).
if ! grep -q ' bench.test$' /etc/hosts; then
  echo '127.0.0.1 bench.test' >>/etc/hosts
  HOSTS_ADDED=1
fi
for _ in $(seq 100); do
  [ "$(curl -s --cacert "$WORK/tls.pem" https://bench.test:$INGS/)" = hello ] && break
  sleep 0.1
done
ROUNDS=${ROUNDS:-3}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# ROUNDS runs of each proxy, alternated; the medians of rps and p99.
point() { # label berth-port haproxy-port connections [scheme]
  local i b h br=() bp=() bb=0 hr=() hp=() hb=0
  for i in $(seq "$ROUNDS"); do
    read -r b0 b1 b2 < <(run "$2" "$4" "${5:-http}")
    read -r h0 h1 h2 < <(run "$3" "$4" "${5:-http}")
    echo "  $1 c=$4 round $i: berth $b0 rps p99 $b1 ms | haproxy $h0 rps p99 $h1 ms" >&2
    br+=("$b0"); bp+=("$b1"); bb=$((bb + b2)); hr+=("$h0"); hp+=("$h1"); hb=$((hb + h2))
  done
  local brps bp99 hrps hp99
  brps=$(printf '%s\n' "${br[@]}" | median); bp99=$(printf '%s\n' "${bp[@]}" | median)
  hrps=$(printf '%s\n' "${hr[@]}" | median); hp99=$(printf '%s\n' "${hp[@]}" | median)
  echo "$1 c=$4  berth $brps rps p99 ${bp99} ms (non-2xx $bb) | haproxy $hrps rps p99 ${hp99} ms (non-2xx $hb) | rps $(ratio "$brps" "$hrps")x (goal >= 1.0), p99 $(ratio "$bp99" "$hp99")x of haproxy's (goal <= 1.1); medians of $ROUNDS"
}
if [ "${ONLY:-}" != I2 ]; then for c in 50 200; do point I1 $ING $HAP $c; done; fi
if [ "${ONLY:-}" != I1 ]; then for c in 50 200; do point I2 $INGS $HAPS $c https; done; fi
