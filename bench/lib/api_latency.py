"""Latency of berth's API, one request at a time: over the unix socket
(root) and over the remote API (HTTPS, a bearer token), each on a kept-alive
connection and on a new connection per request. Prints medians and p99s.
Usage: api_latency.py SOCKET HOST PORT TOKEN PATH N"""
import http.client
import json
import socket
import ssl
import sys
import time

sock_path, host, port, token, obj, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])


class UnixConn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)


ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3


def unix():
    return UnixConn("berth")


def https():
    return http.client.HTTPSConnection(host, port, context=ctx)


def call(conn, method, path, body, auth):
    headers = {"Content-Type": "application/json", "Host": "berth"}
    if auth:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")


def measure(make, auth, method, path, body, keep):
    lat = []
    conn = make() if keep else None
    for i in range(n):
        b = body(i) if body else None
        t = time.perf_counter()
        c = conn if keep else make()
        call(c, method, path, b, auth)
        if not keep:
            c.close()
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


ls = ("GET", "/v1/objects?selector=*", None)
edit = ("POST", "/v1/objects/edit", lambda i: json.dumps({"selector": obj, "set": [f"env=E{i}"], "unset": []}))
for name, (method, path, body) in (("ls", ls), ("set", edit)):
    for keep in (True, False):
        u50, u99 = measure(unix, False, method, path, body, keep)
        r50, r99 = measure(https, True, method, path, body, keep)
        conn = "kept connection" if keep else "new connection each"
        print(f"S1 {name:3} {conn:20} unix p50 {u50:.2f} ms p99 {u99:.2f} ms | remote+token p50 {r50:.2f} ms p99 {r99:.2f} ms | p50 {r50/u50:.2f}x, extra {r50-u50:.2f} ms")
