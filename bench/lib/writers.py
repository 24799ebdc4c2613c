#!/usr/bin/env python3
"""Closed-loop write load for C3: N clients, each writing as fast as its
previous write is acknowledged, for a fixed time. Prints writes/s.

  writers.py berth <berth.sock> <clients> <seconds>   # berth <obj> set --kw env=<n>
  writers.py etcd  <host:port>  <clients> <seconds>   # etcd v3 put, HTTP gateway
"""
import base64, http.client, json, socket, sys, threading, time

mode, target, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

counts = [0] * clients
errors = [0] * clients
stop = time.monotonic() + seconds

def worker(k):
    if mode == "berth":
        conn = UnixConn(target)
        path, body = "/v1/objects/edit", lambda n: {"selector": f"c3/o{k}", "set": [f"env=v{n}"]}
    else:
        host, port = target.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        key = base64.b64encode(f"c3/o{k}".encode()).decode()
        path, body = "/v3/kv/put", lambda n: {"key": key, "value": base64.b64encode(f"v{n}".encode()).decode()}
    n = 0
    while time.monotonic() < stop:
        n += 1
        conn.request("POST", path, json.dumps(body(n)), {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            counts[k] += 1
        else:
            errors[k] += 1

threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
print(f"{sum(counts) / elapsed:.1f} {sum(errors)}")
