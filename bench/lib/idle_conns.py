"""Opens N keep-alive connections to 127.0.0.1:PORT, sends one request with
Host HOST on each and reads its answer, then holds them all open and idle
until stdin closes. Prints "open N" once every answer came back.

Usage: idle_conns.py PORT HOST N
"""
import selectors
import socket
import sys

port, host, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
req = ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode()
sel = selectors.DefaultSelector()
socks = []
pending = 0
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    sel.register(s, selectors.EVENT_WRITE, "connect")
    socks.append(s)
    pending += 1
    # Bounded bursts, so the listen backlog never overflows.
    while pending > 500 or (i == n - 1 and pending):
        for key, ev in sel.select(timeout=30):
            s = key.fileobj
            if key.data == "connect":
                s.sendall(req)
                sel.modify(s, selectors.EVENT_READ, "answer")
            else:
                data = s.recv(65536)
                if not data:
                    sys.exit("a connection was closed: %d open" % (len(socks)))
                if b"\r\n\r\n" in data:
                    sel.unregister(s)
                    pending -= 1
print("open", len(socks), flush=True)
sys.stdin.read()
