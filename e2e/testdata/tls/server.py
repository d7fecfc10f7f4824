"""An HTTPS server: Python's http.server wrapped in ssl, keep-alive.

Usage: server.py CERT KEY [PORT [HOST]]. Prints "READY HOST:PORT" (HOST
127.0.0.1 unless given).
/status/N answers N; /big answers 1 MiB in one write; POST reads the
body and answers "ok"; anything else answers "hello".
"""
import http.server
import ssl
import sys

BIG = bytes(range(256)) * 4096


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/status/"):
            self.reply(int(self.path.split("/")[2]), b"")
        elif self.path == "/big":
            self.reply(200, BIG)
        else:
            self.reply(200, b"hello")

    def do_POST(self):
        left = int(self.headers.get("Content-Length", "0"))
        while left > 0:
            left -= len(self.rfile.read(min(left, 65536)))
        self.reply(200, b"ok")


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
host = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
srv = http.server.HTTPServer((host, port), Handler)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("READY %s:%d" % (host, srv.server_address[1]), flush=True)
srv.serve_forever()
