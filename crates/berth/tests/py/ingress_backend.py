"""A backend for the ingress tests: answers every GET with what it saw
(its name, the Host, the forwarding headers, the path) as JSON, an
Upgrade request with 101 and then an echo of every byte it gets, and
/drip with "abc", a piece every 1.5 s.

Usage: ingress_backend.py PORT NAME [BIND]   (BIND: 127.0.0.1 unless given)
"""
import json
import socket
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # Headers and body are separate writes: without this, Nagle and
        # the ingress's delayed ACK cost 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self):
        if self.headers.get("Upgrade"):
            self.send_response(101)
            self.send_header("Upgrade", self.headers["Upgrade"])
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            while True:
                data = self.connection.recv(4096)
                if not data:
                    return
                self.connection.sendall(data)
        if self.path.startswith("/drip"):
            # An answer in three pieces, each after a pause longer than
            # the ingress's park delay.
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"a", b"b", b"c"):
                self.wfile.write(b"1\r\n" + piece + b"\r\n")
                self.wfile.flush()
                time.sleep(1.5)
            self.wfile.write(b"0\r\n\r\n")
            return
        body = json.dumps({
            "name": NAME,
            "host": self.headers.get("Host"),
            "xff": self.headers.get_all("X-Forwarded-For"),
            "proto": self.headers.get("X-Forwarded-Proto"),
            "fhost": self.headers.get("X-Forwarded-Host"),
            "forwarded": self.headers.get("Forwarded"),
            "connection": self.headers.get("Connection"),
            "path": self.path,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    PORT, NAME = int(sys.argv[1]), sys.argv[2]
    BIND = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    with Server((BIND, PORT), Handler) as s:
        print("ready", flush=True)
        s.serve_forever()
