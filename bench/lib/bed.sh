# A multi-node bed for benchmarks, the shell twin of tests/common/testbed.rs:
# each node is a network namespace on a bridge this script creates
# (10.215.<n>.0/24), with its own dockerd (data-root, exec-root, socket) and
# its own berth daemon and home. Source it, then call bed_up N; bed_down runs
# on exit. Every address stays inside the bridge and namespaces it made.

BED_ID=$(printf '%04x' $((RANDOM % 65536)))
BED_NET=10.215.$((RANDOM % 200 + 20))
BED_BR=bb${BED_ID}
BED_DIR=$(mktemp -d /tmp/berth-bed.XXXXXX)
BED_N=0

bed_ns() { echo "bn${BED_ID}n$1"; }
bed_veth() { echo "bv${BED_ID}n$1"; }
bed_addr() { echo "$BED_NET.$((11 + $1))"; }
bed_home() { echo "$BED_DIR/node$1/berth"; }
bed_sock() { echo "$BED_DIR/node$1/docker.sock"; }
bed_exec_root() { echo "$BED_DIR/node$1/x"; }
bed_in() { local i=$1; shift; nsenter --net=/var/run/netns/$(bed_ns "$i") "$@"; }
bed_berth() { local i=$1; shift; BERTH_HOME=$(bed_home "$i") "$B" "$@"; }
bed_docker() { local i=$1; shift; docker -H "unix://$(bed_sock "$i")" "$@"; }

bed_wait() { # what seconds command...
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { echo "timed out waiting for $what" >&2; return 1; }
    sleep 0.1
  done
}

bed_start_dockerd() {
  local i=$1 d=$BED_DIR/node$1
  # A SIGKILLed dockerd leaves containerd's pidfile; the next one would wait for it.
  rm -f "$d/docker.pid" "$(bed_exec_root "$i")/containerd/containerd.pid"
  bed_in "$i" dockerd -H "unix://$(bed_sock "$i")" --data-root "$d/data" \
    --exec-root "$(bed_exec_root "$i")" --pidfile "$d/docker.pid" \
    --exec-opt native.cgroupdriver=cgroupfs </dev/null >>"$d/dockerd.log" 2>&1 &
  disown
  bed_wait "dockerd $i" 60 bed_docker "$i" version
}

bed_start_agent() {
  local i=$1
  # The Consul API and DNS on the node's bed address: the host reaches them
  # (the Consul API without a token, which loopback alone gets by default).
  BERTH_HOME=$(bed_home "$i") bed_in "$i" "$B" daemon run --nodename node$i \
    --docker-socket "$(bed_sock "$i")" \
    --consul-addr "$(bed_addr "$i"):8500" --consul-anonymous any --dns-addr "$(bed_addr "$i"):8600" </dev/null >>"$BED_DIR/node$i/berth.log" 2>&1 &
  echo $! >"$BED_DIR/node$i/agent.pid"
  disown
  bed_wait "agent $i" 30 bed_berth "$i" daemon status
}

bed_up() { # nodes image
  BED_N=$1
  local img=$2
  ip link add "$BED_BR" type bridge
  ip addr add "$BED_NET.1/24" dev "$BED_BR"
  ip link set "$BED_BR" up
  iptables -I FORWARD -i "$BED_BR" -o "$BED_BR" -j ACCEPT
  docker save -o "$BED_DIR/image.tar" "$img"
  for i in $(seq 0 $((BED_N - 1))); do
    mkdir -p "$BED_DIR/node$i"
    ip netns add "$(bed_ns "$i")"
    ip link add "$(bed_veth "$i")" type veth peer name eth0 netns "$(bed_ns "$i")"
    ip link set "$(bed_veth "$i")" master "$BED_BR" up
    ip -n "$(bed_ns "$i")" addr add "$(bed_addr "$i")/24" dev eth0
    ip -n "$(bed_ns "$i")" link set eth0 up
    ip -n "$(bed_ns "$i")" link set lo up
    bed_start_dockerd "$i"
    bed_docker "$i" load -i "$BED_DIR/image.tar" >/dev/null
    bed_start_agent "$i"
  done
}

bed_descendants() { # pid...
  local p
  for p in "$@"; do
    local kids
    kids=$(pgrep -P "$p" || true)
    [ -n "$kids" ] && { echo $kids; bed_descendants $kids; }
  done
}

# A node crash: SIGKILL for its agent, dockerd, containerd, the shims found
# by their exec-root argument, and all their descendants. BED_KILLED_AT is
# the moment the signals went out.
bed_kill() {
  local i=$1 pids=""
  [ -f "$BED_DIR/node$i/agent.pid" ] && pids="$pids $(cat "$BED_DIR/node$i/agent.pid")"
  [ -f "$BED_DIR/node$i/docker.pid" ] && pids="$pids $(cat "$BED_DIR/node$i/docker.pid")"
  pids="$pids $(pgrep -f -- "$(bed_exec_root "$i")" || true)"
  local all="$pids $(bed_descendants $pids)"
  BED_KILLED_AT=$(date +%s.%N)
  kill -9 $all 2>/dev/null || true
  local p
  for p in $all; do
    while [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null; do sleep 0.02; done
  done
}

bed_restart() { bed_start_dockerd "$1"; bed_start_agent "$1"; }

bed_form_cluster() { # managers
  local managers=$1 mt wt i
  bed_berth 0 cluster init --advertise "$(bed_addr 0):7946" >/dev/null
  mt=$(bed_berth 0 cluster token --manager)
  wt=$(bed_berth 0 cluster token)
  for i in $(seq 1 $((BED_N - 1))); do
    local t=$wt
    [ "$i" -lt "$managers" ] && t=$mt
    bed_berth "$i" cluster join "$(bed_addr 0):7946" --token "$t" --advertise "$(bed_addr "$i"):7946" >/dev/null
  done
}

bed_down() {
  local i
  for i in $(seq 0 $((BED_N - 1))); do bed_kill "$i"; done
  pkill -9 -f -- "$BED_DIR" 2>/dev/null || true
  grep -o " $BED_DIR[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for i in $(seq 0 $((BED_N - 1))); do
    ip link del "$(bed_veth "$i")" 2>/dev/null || true
    ip netns del "$(bed_ns "$i")" 2>/dev/null || true
  done
  iptables -D FORWARD -i "$BED_BR" -o "$BED_BR" -j ACCEPT 2>/dev/null || true
  ip link del "$BED_BR" 2>/dev/null || true
  if [ "${BED_KEEP:-}" = 1 ]; then
    find "$BED_DIR" -maxdepth 2 -name '*.log' -printf '%p\n' >&2
    find "$BED_DIR" -mindepth 2 -maxdepth 2 ! -name '*.log' -exec rm -rf {} + 2>/dev/null || true
  else
    rm -rf "$BED_DIR"
  fi
}
