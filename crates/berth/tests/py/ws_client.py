"""A WebSocket client, from the websockets package, through the ingress:
one echo, then a wait for a go-ahead on stdin (the test changes the routes
meanwhile), then one more echo on the same connection.

Usage: ws_client.py ADDR PORT HOST
"""
import socket
import sys

from websockets.sync.client import connect

addr, port, host = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.create_connection((addr, port), timeout=10)
with connect(f"ws://{host}:{port}/echo", sock=sock, open_timeout=10) as ws:
    for line in ("first", "after the route change"):
        ws.send(line)
        got = ws.recv(timeout=10)
        if got != line:
            sys.exit(f"echo {got!r} for {line!r}")
        print("open" if line == "first" else "ok", flush=True)
        if line == "first":
            sys.stdin.readline()
