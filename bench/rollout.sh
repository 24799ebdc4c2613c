#!/usr/bin/env bash
# U1: a rolling update of 10 instances from image v1 to image v2 behind a
# health gate, berth against Docker Swarm mode, in the same run on the same
# machine. Both sides get the same images (busybox httpd serving /health and
# /version, content v1 or v2), the same check (GET /health every 1 s, 1
# retry), 1 instance at a time, stop-first, no delay, the same monitor
# (MONITOR, default 1s) and a 1 s stop timeout; each runs on a throwaway
# dockerd of its own, in a network namespace of its own (loopback only), one
# side after the other.
#   Swarm: `docker swarm init`, `service create --replicas 10 --publish
#   published=18700,target=80 --health-cmd ...`, timed `service update
#   --image` (it waits for convergence).
#   berth: a daemon with --ingress-http 127.0.0.1:18710; 10 one-instance
#   services u1/web0..9 behind one ingress host (a flex service places one
#   instance per node, and there is one node here), timed `berth 'u1/*' set
#   --kw container#0.image=...` + `berth 'u1/*' deploy` (each deploy waits
#   for its rollout; the CLI runs them one after the other).
# During each rollout a paced wrk load (WRK_CONNS connections, each waiting
# PACE_MS between requests) runs inside the side's namespace against its
# entry point (Swarm's published port, berth's ingress with a Host header);
# failed = wrk's socket errors (connect, read, write, timeout) + non-2xx;
# the load runs from 1 s before the timed command to 1 s after it. berth's
# ingress tries a failed GET once more on another backend: the script also
# prints how many backend attempts failed (its metrics), which wrk cannot see.
# Swarm's routing mesh needs IPVS in the kernel: where it does not answer
# (this VM: CONFIG_IP_VS unset), Swarm's failed requests are reported n/a
# and its rollout runs without load.
# The gates differ: berth holds each new instance healthy for MONITOR
# before the next one; Swarm moves on once a task is running (which, with a
# health check, means healthy) and waits MONITOR once, after the last.
# Rounds alternate v1 -> v2 and v2 -> v1; after each, every instance must
# run the target image or the script fails.
# Usage: bench/rollout.sh [ROUNDS]   (root; dockerd 20.10+, wrk, nsenter;
#        builds release berth unless SKIP_BUILD=1; ROUNDS defaults to 3,
#        about 5 minutes on 2 busy cores)
#   MONITOR=1s     update_monitor / --update-monitor of both sides
#   WRK_CONNS=10 PACE_MS=10   the load: at most WRK_CONNS*1000/PACE_MS req/s
#   SWARM_PUBLISH=0   Swarm's service without --publish (and so without
#                  the 2 s "gossip converge" pause Swarm makes before
#                  stopping each task that has a service binding)
#   KEEP=1         keep the logs (docker events of each rollout, deploy
#                  output, dockerd logs) in the work directory
# The body is one block, so bash reads it whole: editing the file while a
# run is in progress cannot derail that run.
{
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
MONITOR=${MONITOR:-1s}
WRK_CONNS=${WRK_CONNS:-10}
PACE_MS=${PACE_MS:-10}
N=10
SPORT=18700   # Swarm's published port, in its namespace
ING=18710     # berth's ingress, in its namespace
MET=18711     # berth's metrics, in its namespace
HOST=u1.test
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -q
B=$PWD/target/release/berth
WORK=$(mktemp -d /tmp/berth-u1bench.XXXXXX)
TAG=$(basename "$WORK" | cut -d. -f2 | tr -dc 'A-Za-z0-9')
export BERTH_HOME=$WORK/berth/home
WRK_PID=
EV_PID=

ns() { echo "u1$1$TAG"; }   # s: Swarm's namespace, b: berth's
in_ns() { local s=$1; shift; nsenter --net=/var/run/netns/"$(ns "$s")" "$@"; }
ds() { docker -H "unix://$WORK/swarm/docker.sock" "$@"; }
db() { docker -H "unix://$WORK/berth/docker.sock" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
die() { echo "U1 FAILED: $*" >&2; exit 1; }

events_start() { # side file: the containers' lifecycle events, as they come
  docker -H "unix://$WORK/$1/docker.sock" events --filter type=container --filter event=kill \
    --filter event=die --filter event=start --filter event=health_status \
    --format '{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}' >"$2.raw" 2>/dev/null &
  EV_PID=$!
}
events_stop() { # file t0: seconds from t0
  sleep 0.5
  kill "$EV_PID" 2>/dev/null || true
  wait "$EV_PID" 2>/dev/null || true
  EV_PID=
  awk -v t0="$2" '{printf "%6.2f %s\n", $1 / 1e9 - t0, substr($0, length($1) + 2)}' "$1.raw" >"$1"
  rm -f "$1.raw"
}

descendants() { # pid...
  local p kids
  for p in "$@"; do
    kids=$(pgrep -P "$p" || true)
    [ -n "$kids" ] && { echo $kids; descendants $kids; }
  done
  return 0
}

dockerd_up() { # side (swarm|berth)
  local side=$1 d=$WORK/$1 s=${1:0:1}
  mkdir -p "$d"
  ip netns add "$(ns "$s")"
  ip -n "$(ns "$s")" link set lo up
  # No registry is reachable: Swarm's workers would try a pull before each
  # task; DOCKER_SERVICE_PREFER_OFFLINE_IMAGE makes them use the local image.
  in_ns "$s" env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 dockerd -H "unix://$d/docker.sock" \
    --data-root "$d/data" --exec-root "$d/x" --pidfile "$d/docker.pid" \
    --exec-opt native.cgroupdriver=cgroupfs </dev/null >>"$d/dockerd.log" 2>&1 &
  local i
  for i in $(seq 600); do
    docker -H "unix://$d/docker.sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -20 "$d/dockerd.log" >&2
  die "$side dockerd did not come up"
}

dockerd_down() { # side
  local d=$WORK/$1 pid i left
  if [ -f "$d/docker.pid" ]; then
    pid=$(cat "$d/docker.pid")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 200); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # containerd and the shims this dockerd started carry its exec-root in
  # their arguments; they and their children (the containers) go too.
  left=$(pgrep -f -- "$d/x/" || true)
  [ -n "$left" ] && kill -9 $left $(descendants $left) 2>/dev/null || true
  rm -f "$d/docker.pid"
}

cleanup() {
  set +e
  [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
  [ -n "$EV_PID" ] && kill "$EV_PID" 2>/dev/null
  if [ -f "$BERTH_HOME/berth.pid" ]; then
    "$B" 'u1/*' delete >/dev/null 2>&1
    "$B" daemon stop >/dev/null 2>&1
  fi
  [ -S "$WORK/swarm/docker.sock" ] && ds service rm web >/dev/null 2>&1
  dockerd_down swarm
  dockerd_down berth
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  ip netns del "$(ns s)" 2>/dev/null
  ip netns del "$(ns b)" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then
    rm -rf "$WORK/swarm/data" "$WORK/swarm/x" "$WORK/berth/data" "$WORK/berth/x" "$WORK/img" "$WORK/images.tar"
    echo "U1 logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the load -----------------------------------------------------------
cat >"$WORK/pace.lua" <<LUA
function delay() return $PACE_MS end
LUA
load_start() { # side port
  nsenter --net=/var/run/netns/"$(ns "$1")" wrk -t 1 -c "$WRK_CONNS" -d 600s -s "$WORK/pace.lua" -H "Host: $HOST" \
    "http://127.0.0.1:$2/version" >"$WORK/wrk.out" 2>&1 &
  WRK_PID=$!
  sleep 1
}
load_stop() { # sets REQ and FAILED
  local i
  sleep 1
  kill -INT "$WRK_PID" 2>/dev/null || true
  for i in $(seq 100); do [ -e "/proc/$WRK_PID" ] || break; sleep 0.1; done
  kill -9 "$WRK_PID" 2>/dev/null || true
  wait "$WRK_PID" 2>/dev/null || true
  WRK_PID=
  grep -q 'requests in' "$WORK/wrk.out" || { cat "$WORK/wrk.out" >&2; die "wrk printed no summary"; }
  read -r REQ FAILED < <(awk '/requests in/ {req=$1}
    /Socket errors/ {gsub(",", ""); se=$4+$6+$8+$10}
    /Non-2xx/ {bad=$NF}
    END {print req+0, se+bad}' "$WORK/wrk.out")
}

# --- images: two imports of the static busybox, differing in /www --------
mkimage() { # tag version (into the Swarm side's dockerd)
  local r=$WORK/img/$2
  mkdir -p "$r/bin" "$r/www"
  cp /bin/busybox "$r/bin/"
  for a in sh wget sleep; do ln -s busybox "$r/bin/$a"; done
  echo "$2" >"$r/www/version"
  echo ok >"$r/www/health"
  tar -C "$r" -cf "$WORK/img/$2.tar" .
  # PID 1 exits on SIGTERM, so a stop is prompt on both sides.
  ds import -c 'CMD ["/bin/sh","-c","trap '"'"'exit 0'"'"' TERM; /bin/busybox httpd -f -p 80 -h /www & wait"]' \
    "$WORK/img/$2.tar" "$1" >/dev/null
}

echo "U1: $N instances, check every 1s (retries 1), parallelism 1, stop-first, monitor $MONITOR, stop timeout 1s; load: wrk $WRK_CONNS conns paced ${PACE_MS} ms; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ========================= Swarm ===========================================
dockerd_up swarm
mkimage u1/web:1 v1
mkimage u1/web:2 v2
ds save -o "$WORK/images.tar" u1/web:1 u1/web:2
ds swarm init --advertise-addr 127.0.0.1 >/dev/null
PUBLISH=(--publish "published=$SPORT,target=80")
[ "${SWARM_PUBLISH:-1}" = 1 ] || PUBLISH=()
ds service create -d -q --name web --no-resolve-image --replicas $N \
  "${PUBLISH[@]}" \
  --health-cmd 'wget -q -O /dev/null http://127.0.0.1/health || exit 1' \
  --health-interval 1s --health-retries 1 --stop-grace-period 1s \
  --update-parallelism 1 --update-delay 0s --update-monitor "$MONITOR" \
  --update-order stop-first --update-failure-action rollback u1/web:1 >/dev/null

swarm_ready() {
  local i
  for i in $(seq 600); do
    [ "$(ds service ls --filter name=web --format '{{.Replicas}}')" = "$N/$N" ] && return 0
    sleep 0.2
  done
  ds service ps web --no-trunc >&2
  die "Swarm: $N replicas not running after 120 s"
}
verify_swarm() { # tag [completed]: also the update's state
  local want state lines ok ids running
  want=$(ds image inspect -f '{{.Id}}' "$1")
  state=$(ds service inspect web -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}')
  [ -z "$2" ] || [ "$state" = completed ] || die "Swarm: update state '$state', not completed"
  lines=$(ds service ps web --filter desired-state=running --format '{{.Image}} {{.CurrentState}}')
  ok=$(grep -c "^$1 Running" <<<"$lines" || true)
  ids=$(ds ps -q --filter label=com.docker.swarm.service.name=web)
  running=$(for c in $ids; do ds inspect -f '{{.State.Running}} {{.Image}}' "$c"; done | grep -c "^true $want\$" || true)
  [ "$ok" = $N ] && [ "$(wc -l <<<"$lines")" = $N ] && [ "$running" = $N ] && [ "$(wc -w <<<"$ids")" = $N ] \
    || { echo "$lines" >&2; die "Swarm: not every instance runs $1 ($ok tasks, $running containers)"; }
}
swarm_ready
verify_swarm u1/web:1 ""

# Does the routing mesh answer on the published port?
MESH=$(in_ns s curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPORT/version" || true)
if [ "$MESH" = 200 ]; then
  MESH_NOTE=; MESH_SHORT=
elif [ ${#PUBLISH[@]} = 0 ]; then
  MESH_NOTE="no published port (SWARM_PUBLISH=0)"; MESH_SHORT="not published"
  echo "U1 note: Swarm without a published port: its failed requests are n/a; its rollouts run without load." >&2
else
  why="published port $SPORT does not answer (curl: ${MESH:-no answer})"
  [ -d /proc/sys/net/ipv4/vs ] || why="$why; no IPVS in this kernel (no /proc/sys/net/ipv4/vs)"
  grep -q 'Could not get ipvs family' "$WORK/swarm/dockerd.log" && why="$why; dockerd: \"Could not get ipvs family information from the kernel ... Native loadbalancing will not work\""
  MESH_NOTE=$why; MESH_SHORT="routing mesh not serving"
  echo "U1 note: Swarm's routing mesh does not serve here: $why. Swarm's failed requests: n/a; its rollouts run without load." >&2
fi

sw_times=(); sw_fail=(); sw_req=()
from=1
for r in $(seq "$ROUNDS"); do
  to=$((3 - from))
  [ -z "$MESH_NOTE" ] && load_start s $SPORT
  events_start swarm "$WORK/swarm-events.$r.log"
  t0=$(now)
  ds service update --no-resolve-image --image u1/web:$to web >"$WORK/swarm-update.$r.log" 2>&1 \
    || { cat "$WORK/swarm-update.$r.log" >&2; die "Swarm: service update failed"; }
  t1=$(now)
  events_stop "$WORK/swarm-events.$r.log" "$t0"
  if [ -z "$MESH_NOTE" ]; then load_stop; else REQ=n/a; FAILED=n/a; fi
  verify_swarm u1/web:$to completed
  server=$(ds service inspect web -f '{{.UpdateStatus.StartedAt.Format "2006-01-02T15:04:05.000000000Z07:00"}} {{.UpdateStatus.CompletedAt.Format "2006-01-02T15:04:05.000000000Z07:00"}}' \
    | python3 -c 'import sys,datetime as d; a,b=sys.stdin.read().split(); f=lambda s: d.datetime.fromisoformat(s.replace("Z","+00:00")); print("%.1f" % (f(b)-f(a)).total_seconds())' 2>/dev/null || echo "?")
  t=$(secs "$t0" "$t1")
  echo "  swarm round $r (v$from -> v$to): $t s (UpdateStatus started -> completed: $server s); failed $FAILED of $REQ requests"
  sw_times+=("$t"); sw_fail+=("$FAILED"); sw_req+=("$REQ")
  from=$to
done
ds service rm web >/dev/null
for _ in $(seq 100); do [ -z "$(ds ps -q)" ] && break; sleep 0.2; done
dockerd_down swarm

# ========================= berth ===========================================
dockerd_up berth
db load -i "$WORK/images.tar" >/dev/null
in_ns b env BERTH_CONSUL_ADDR=none BERTH_DNS_ADDR=none "$B" daemon start --nodename u1bench \
  --docker-socket "$WORK/berth/docker.sock" --ingress-http "127.0.0.1:$ING" \
  --metrics-addr "127.0.0.1:$MET" >/dev/null
for i in $(seq 0 $((N - 1))); do
  "$B" create u1/web$i --kw container#0.image=u1/web:1 \
    --kw container#0.check=http://:80/health --kw container#0.health_interval=1s \
    --kw container#0.health_retries=1 --kw container#0.stop_timeout=1s \
    --kw container#0.service_name=u1web --kw container#0.service_port=80 \
    --kw container#0.ingress_hosts=$HOST \
    --kw topology=flex --kw update_parallelism=1 --kw update_delay=0s \
    --kw update_order=stop-first --kw update_monitor="$MONITOR" >/dev/null
done
"$B" 'u1/*' start >/dev/null

berth_ready() { # version
  local i n
  for i in $(seq 600); do
    n=$("$B" ingress routes --format json | python3 -c '
import json,sys
r=[x for x in json.load(sys.stdin).get("routes",[]) if x["host"]==sys.argv[1]]
print(sum(1 for b in (r[0]["backends"] if r else []) if b.get("in_rotation")))' "$HOST")
    if [ "$n" = $N ] && [ "$(in_ns b curl -s -m 2 -H "Host: $HOST" "http://127.0.0.1:$ING/version")" = "v$1" ]; then
      return 0
    fi
    sleep 0.2
  done
  "$B" ingress routes >&2
  die "berth: $N instances not in rotation after 120 s"
}
verify_berth() { # tag
  local want running stale
  want=$(db image inspect -f '{{.Id}}' "$1")
  running=$(for c in $(db ps -q --filter label=berth.path); do db inspect -f '{{.State.Running}} {{.Image}}' "$c"; done)
  [ "$(grep -c "^true $want\$" <<<"$running" || true)" = $N ] && [ "$(wc -l <<<"$running")" = $N ] \
    || { echo "$running" >&2; die "berth: not every instance runs $1"; }
  stale=$("$B" 'u1/*' print status --format json | python3 -c '
import json,sys
s=json.load(sys.stdin)
bad=[o["path"] for o in s if o.get("avail")!="up" or any(r.get("config_changed") for r in o["resources"])]
print(len(s), " ".join(bad))')
  [ "$stale" = "$N " ] || die "berth: status after the rollout: $stale (objects, then any not up or config changed)"
}
# Backend attempts that failed before an answer: an idempotent request is
# tried once more on another backend, so these are not in wrk's count.
backend_errors() {
  in_ns b curl -s -m 5 "http://127.0.0.1:$MET/metrics" \
    | awk -v h="$HOST" '/^berth_ingress_backend_errors_total/ && index($0, h) {s += $NF; n++}
        END {if (!n) exit 1; print s + 0}'
}
berth_ready 1
verify_berth u1/web:1

be_times=(); be_fail=(); be_req=(); be_retried=()
from=1
for r in $(seq "$ROUNDS"); do
  to=$((3 - from))
  load_start b $ING
  e0=$(backend_errors) || die "berth: no berth_ingress_backend_errors_total for $HOST on :$MET/metrics"
  events_start berth "$WORK/berth-events.$r.log"
  t0=$(now)
  "$B" 'u1/*' set --kw container#0.image=u1/web:$to >/dev/null
  "$B" 'u1/*' deploy >"$WORK/berth-deploy.$r.log" 2>&1 \
    || { cat "$WORK/berth-deploy.$r.log" >&2; die "berth: deploy failed"; }
  t1=$(now)
  events_stop "$WORK/berth-events.$r.log" "$t0"
  load_stop
  e1=$(backend_errors) || die "berth: no berth_ingress_backend_errors_total for $HOST on :$MET/metrics"
  retried=$((e1 - e0))
  deployed=$(grep -c 'deployed' "$WORK/berth-deploy.$r.log" || true)
  [ "$deployed" -ge $N ] || { cat "$WORK/berth-deploy.$r.log" >&2; die "berth: $deployed of $N deploys say deployed"; }
  verify_berth u1/web:$to
  t=$(secs "$t0" "$t1")
  echo "  berth round $r (v$from -> v$to): $t s; failed $FAILED of $REQ requests (backend attempts failed and retried by the ingress: $retried)"
  be_times+=("$t"); be_fail+=("$FAILED"); be_req+=("$REQ"); be_retried+=("$retried")
  from=$to
  berth_ready $to
done

# ========================= summary =========================================
sum() { local s=0 x; for x in "$@"; do [ "$x" = n/a ] && { echo n/a; return; }; s=$((s + x)); done; echo $s; }
swt=$(printf '%s\n' "${sw_times[@]}" | median)
bet=$(printf '%s\n' "${be_times[@]}" | median)
swf=$(sum "${sw_fail[@]}"); swr=$(sum "${sw_req[@]}")
bef=$(sum "${be_fail[@]}"); ber=$(sum "${be_req[@]}")
echo "U1 swarm: rollout $swt s (median of $ROUNDS), failed $swf of $swr requests${MESH_SHORT:+ ($MESH_SHORT)}"
echo "U1 berth: rollout $bet s (median of $ROUNDS), failed $bef of $ber requests (ingress retries $(sum "${be_retried[@]}"))"
echo "U1 ratio berth/swarm time = $(awk -v a="$bet" -v b="$swt" 'BEGIN {printf "%.2f", a/b}') (goal <= 1.0); failed berth $bef vs swarm $swf"
}
