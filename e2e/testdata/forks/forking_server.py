"""An HTTP/1.0 server that forks a child per connection (socketserver's
ForkingMixIn, as pre-fork and inetd-style servers do): the child answers
with its own pid and exits. GET /exec?port=P answers, then the child runs a
new program (exec) that fetches http://127.0.0.1:P/after-exec and prints
"EXECED <pid> <status>"."""
import http.server
import os
import socketserver
import sys

FETCH = """
import os, sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/after-exec")
r.read()
print("EXECED", os.getpid(), r.status, flush=True)
"""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"child %d" % os.getpid()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if self.path.startswith("/exec?port="):
            port = self.path.split("=", 1)[1]
            self.connection.close()
            os.execv(sys.executable, [sys.executable, "-c", FETCH % port])

    def log_message(self, *args):
        pass


class Server(socketserver.ForkingMixIn, http.server.HTTPServer):
    pass


server = Server(("127.0.0.1", 0), Handler)
print("READY 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
