# haproxy 2.6 as the ingress benchmarks' anchor: one frontend routing Host
# bench.test round robin to 2 backends, keep-alive on both sides, setting
# the forwarding headers berth's ingress sets (crates/berth-ingress/src/
# headers.rs) in haproxy 2.6's usual idiom (its `option forwarded` came in
# 2.7); wrk's Host has no port, so it needs no stripping. ANCHOR_HEADERS=none
# leaves the headers out. Source it, then
#   haproxy_anchor_cfg FILE PORT BACKEND1 BACKEND2 [TLS_PORT PEM]
haproxy_anchor_cfg() {
  local tls=""
  [ -n "${5:-}" ] && tls="  bind 127.0.0.1:$5 ssl crt $6"
  cat >"$1" <<CFG
global
  maxconn 5000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$2
$tls
  acl bench hdr(host) -i bench.test
$(haproxy_anchor_headers)
  use_backend be if bench
backend be
  balance roundrobin
  server s1 127.0.0.1:$3
  server s2 127.0.0.1:$4
CFG
}

haproxy_anchor_headers() {
  [ "${ANCHOR_HEADERS:-same}" = none ] && return
  cat <<'HDR'
  option forwardfor
  http-request del-header X-Forwarded-For
  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header Forwarded "for=%[src];proto=http;host=\"%[req.hdr(host)]\"" if !{ ssl_fc }
  http-request set-header Forwarded "for=%[src];proto=https;host=\"%[req.hdr(host)]\"" if { ssl_fc }
HDR
}
