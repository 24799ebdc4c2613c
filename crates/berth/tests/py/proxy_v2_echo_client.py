"""Connects to 127.0.0.1:PORT from SOURCE, sends a line, and reads back
what an echo backend behind the mesh returned: a PROXY protocol v2
header, then the line. Prints {"src": "ip:port", "dst": ..., "rest": ...}
as JSON; exits 1 if the bytes do not start with a v2 header.

Usage: proxy_v2_echo_client.py PORT SOURCE
"""
import ipaddress
import json
import socket
import struct
import sys

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
port, source = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.bind((source, 0))
s.settimeout(10)
s.connect(("127.0.0.1", port))
me = s.getsockname()
s.sendall(b"hello\n")
buf = b""
while not buf.endswith(b"hello\n") and len(buf) < 4096:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
if not buf.startswith(SIG) or buf[12] != 0x21:
    print(json.dumps({"raw": buf.hex()}))
    sys.exit(1)
fam, length = buf[13], struct.unpack("!H", buf[14:16])[0]
body = buf[16:16 + length]
if fam == 0x11:
    src = "%s:%d" % (ipaddress.IPv4Address(body[0:4]), struct.unpack("!H", body[8:10])[0])
    dst = "%s:%d" % (ipaddress.IPv4Address(body[4:8]), struct.unpack("!H", body[10:12])[0])
else:
    src = "[%s]:%d" % (ipaddress.IPv6Address(body[0:16]), struct.unpack("!H", body[32:34])[0])
    dst = "[%s]:%d" % (ipaddress.IPv6Address(body[16:32]), struct.unpack("!H", body[34:36])[0])
print(json.dumps({"src": src, "dst": dst, "me": "%s:%d" % me,
                  "rest": buf[16 + length:].decode()}))
