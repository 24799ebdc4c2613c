# Two HTTP backends answering "hello" from memory with keep-alive, as one
# haproxy on 127.0.0.1:PORT1 and :PORT2, so an ingress bench measures the
# proxy in front rather than its backends. Source it, then
#   memory_backends DIR PORT1 PORT2   # starts it; its pid in MEMORY_BACKENDS_PID
memory_backends() {
  cat >"$1/backends.cfg" <<CFG
global
  maxconn 5000
defaults
  mode http
  timeout client 60s
frontend b1
  bind 127.0.0.1:$2
  http-request return status 200 content-type text/plain string hello
frontend b2
  bind 127.0.0.1:$3
  http-request return status 200 content-type text/plain string hello
CFG
  haproxy -f "$1/backends.cfg" -db >/dev/null 2>&1 &
  MEMORY_BACKENDS_PID=$!
}
