"""A threaded Python front service: GET /call/{id} calls GET /work/{id}
on the backend (argv[1], host:port) with urllib and answers with what the
backend said. It prints "READY <addr>" once it listens."""
import http.server
import sys
import urllib.request

BACKEND = sys.argv[1]


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients ask

    def do_GET(self):
        ident = self.path.rsplit("/", 1)[-1]
        with urllib.request.urlopen(f"http://{BACKEND}/work/{ident}") as resp:
            body = resp.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
print(f"READY 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
