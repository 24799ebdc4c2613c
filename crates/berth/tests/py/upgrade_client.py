"""Opens an upgraded connection through the ingress and echoes through
it: sends a line, reads it back, waits for a go-ahead on stdin (the test
changes the routes meanwhile), and echoes again on the same connection.

Usage: upgrade_client.py PORT HOST
"""
import socket
import sys

port, host = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(
    f"GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n".encode()
)
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("closed before the 101")
    head += chunk
status = head.split(b"\r\n", 1)[0].decode()
if " 101 " not in status + " ":
    sys.exit(f"no upgrade: {status}")


def echo(line):
    s.sendall(line)
    got = b""
    while len(got) < len(line):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("the tunnel closed")
        got += chunk
    if got != line:
        sys.exit(f"echo {got!r} for {line!r}")


echo(b"first\n")
print("open", flush=True)
sys.stdin.readline()
echo(b"after the route change\n")
print("ok", flush=True)
