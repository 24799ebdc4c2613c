#!/usr/bin/env bash
# Ingress benchmark I3: memory with 10 000 idle keep-alive connections,
# berth's ingress against haproxy 2.6 in the same run, both routing to the
# same busybox httpd container. Prints each one's RSS before and with the
# connections open (berth's once they are parked, see below).
# Usage: bench/ingress_idle.sh [CONNECTIONS] [BERTH_BIN]   (root; haproxy, a running dockerd).
# Without BERTH_BIN it builds release berth first.
set -euo pipefail
. "$(dirname "$0")/lib/tools.sh"
cd "$(dirname "$0")/.."
N=${1:-10000}
bench_tools haproxy
bench_berth "${2:-}"
IMG=berth-bench/pause:1
scripts/demo-image "$IMG" >/dev/null
ulimit -n "$(ulimit -Hn)"
WORK=$(mktemp -d /tmp/berth-idle.XXXXXX)
export BERTH_HOME=$WORK/berth
HAPID=
cleanup() {
  [ -n "$HAPID" ] && kill "$HAPID" 2>/dev/null || true
  "$B" 'iidle/*' delete >/dev/null 2>&1 || true
  "$B" daemon stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both proxies keep an idle connection 10 minutes (haproxy: timeout
# http-keep-alive below; berth: --ingress-idle-timeout), longer than the run.
ING=18780; HAP=18781; P1=18791; MET=18782
"$B" daemon start --nodename iidle --consul-addr none --dns-addr none \
  --ingress-http 127.0.0.1:$ING --metrics-addr 127.0.0.1:$MET --ingress-idle-timeout 10m >/dev/null
"$B" create iidle/web --kw "container#0.image=$IMG" \
  --kw 'container#0.command=/bin/sh -c "mkdir -p /www && echo hello > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"' \
  --kw "container#0.ports=127.0.0.1:$P1:80" --kw container#0.ingress_hosts=idle.test >/dev/null
"$B" iidle/web start >/dev/null
for _ in $(seq 100); do
  [ "$(curl -s -H 'Host: idle.test' http://127.0.0.1:$ING/)" = hello ] && break
  sleep 0.1
done
cat >"$WORK/haproxy.cfg" <<CFG
global
  # maxconn follows the open-file limit (about 10 000 at 20 000 files).
defaults
  mode http
  timeout connect 5s
  timeout client 10m
  timeout server 10m
  timeout http-keep-alive 10m
frontend fe
  bind 127.0.0.1:$HAP
  default_backend be
backend be
  server s1 127.0.0.1:$P1
CFG
haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 &
HAPID=$!
for _ in $(seq 100); do
  [ "$(curl -s -H 'Host: idle.test' http://127.0.0.1:$HAP/)" = hello ] && break
  sleep 0.1
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }  # KiB
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
BPID=$(cat "$BERTH_HOME/berth.pid" 2>/dev/null || pgrep -f "berth daemon run --home $BERTH_HOME" | head -1)
established() { ss -Htn state established "( sport = :$1 )" | wc -l; }
measure() { # name pid port -> "name rss_before rss_with established" or "name fail"
  local before with n
  before=$(rss "$2")
  exec 3> >(python3 bench/lib/idle_conns.py "$3" idle.test "$N" >"$WORK/$1.out" 2>&1)
  for _ in $(seq 600); do grep -q '^open' "$WORK/$1.out" 2>/dev/null && break; sleep 0.1; done
  if ! grep -q '^open' "$WORK/$1.out"; then
    exec 3>&-
    echo "$1 fail"
    return
  fi
  # berth parks a connection after 1 s of quiet, and hands what that frees
  # back to the kernel within seconds: measured once all are parked (its
  # /metrics says so), 5 s later; haproxy 5 s after its last one opened.
  if [ "$1" = berth ]; then
    for _ in $(seq 300); do
      [ "$(curl -s http://127.0.0.1:$MET/metrics | awk '/^berth_ingress_connections\{state="parked"\}/ {print int($2)}')" = "$N" ] && break
      sleep 0.1
    done
  fi
  sleep 5
  with=$(rss "$2")
  n=$(established "$3")
  exec 3>&-
  echo "$1 $before $with $n"
}
read -r _ bb bw bn < <(measure berth "$BPID" $ING)
read -r _ hb hw hn < <(measure haproxy "$HAPID" $HAP)
if [ "$bb" = fail ]; then echo "I3 berth did not hold $N connections: $(tail -2 "$WORK/berth.out")"; exit 1; fi
line="I3 $N idle connections: berth daemon RSS $(mb "$bb") -> $(mb "$bw") MB (+$(mb $((bw - bb))) MB, $bn established; goal <= 64)"
if [ "$hb" = fail ]; then
  echo "$line | haproxy could not hold $N ($(tail -1 "$WORK/haproxy.out")); its maxconn follows this machine's open-file limit"
else
  echo "$line | haproxy $(mb "$hb") -> $(mb "$hw") MB (+$(mb $((hw - hb))) MB, $hn established) | ratio of the increases $(awk -v a=$((bw - bb)) -v b=$((hw - hb)) 'BEGIN {printf "%.2f", (b == 0 ? 0 : a/b)}')x"
fi
