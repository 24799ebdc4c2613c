# A berth ingress and the haproxy anchor side by side, in front of the
# same 2 in-memory backends (memory_backends.sh, registered through the
# daemon's Consul API with a dns= tag), haproxy at the daemon's niceness
# as in bench/ingress.sh, both answering before it returns. Source it (it
# sources tools.sh, memory_backends.sh and haproxy_anchor.sh), then
#   berth_and_haproxy BIN WORK NAME BACKEND1 BACKEND2 CONSUL INGRESS HAPROXY
#   berth_and_haproxy_stop    # from the EXIT trap
#   proxy_workers PID         # the task directories of a proxy's worker threads
# The daemon's home is WORK/home; haproxy's pid is in HAPROXY_PID.
. "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
. "$(dirname "${BASH_SOURCE[0]}")/memory_backends.sh"
. "$(dirname "${BASH_SOURCE[0]}")/haproxy_anchor.sh"

berth_and_haproxy() {
  local bin=$1 work=$2 name=$3 p1=$4 p2=$5 consul=$6 ing=$7 hap=$8 i port
  BAH_BIN=$bin; BAH_WORK=$work
  memory_backends "$work" "$p1" "$p2"
  BAH_BACKENDS=$MEMORY_BACKENDS_PID
  BERTH_HOME=$work/home "$bin" daemon start --nodename "$name" --consul-addr "127.0.0.1:$consul" \
    --dns-addr none --ingress-http "127.0.0.1:$ing" >/dev/null
  for i in 1 2; do
    port=$((i == 1 ? p1 : p2))
    curl -sf -X PUT --data-binary "{\"ID\":\"$name$i\",\"Name\":\"$name\",\"Address\":\"127.0.0.1\",\"Port\":$port,\"Tags\":[\"dns=bench.test\"]}" \
      "http://127.0.0.1:$consul/v1/agent/service/register" >/dev/null
  done
  haproxy_anchor_cfg "$work/haproxy.cfg" "$hap" "$p1" "$p2"
  nice -n "$(ps -o ni= -p "$(cat "$work/home/berth.pid")" | tr -d ' ')" \
    haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
  HAPROXY_PID=$!
  for port in $ing $hap; do
    for i in $(seq 100); do
      [ "$(curl -s -H 'Host: bench.test' "http://127.0.0.1:$port/")" = hello ] && break
      [ "$i" = 100 ] && { echo "no answer on $port" >&2; return 1; }
      sleep 0.1
    done
  done
}

berth_and_haproxy_stop() {
  [ -n "${HAPROXY_PID:-}" ] && kill "$HAPROXY_PID" 2>/dev/null
  [ -n "${BAH_BACKENDS:-}" ] && kill "$BAH_BACKENDS" 2>/dev/null
  [ -n "${BAH_WORK:-}" ] && BERTH_HOME=$BAH_WORK/home "$BAH_BIN" daemon stop >/dev/null 2>&1
  [ -n "${BAH_WORK:-}" ] && rm -rf "$BAH_WORK"
  return 0
}

# berth's ingress-N threads, or the anchor's haproxy threads.
proxy_workers() {
  local t
  for t in /proc/"$1"/task/*; do
    case $(cat "$t/comm") in ingress-*|haproxy) echo "$t" ;; esac
  done
}
