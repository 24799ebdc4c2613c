"""A WebSocket echo server, from the websockets package: every message
comes back on the same connection.

Usage: ws_echo.py BIND PORT
"""
import sys

from websockets.sync.server import serve


def echo(ws):
    for message in ws:
        ws.send(message)


bind, port = sys.argv[1], int(sys.argv[2])
with serve(echo, bind, port) as server:
    print("ready", flush=True)
    server.serve_forever()
