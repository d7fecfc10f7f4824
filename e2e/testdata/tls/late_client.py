"""A client that loads TLS late: it connects once without TLS (which gets
it watched), waits, and only then imports ssl (mapping libssl) and makes
HTTPS requests, a connection each.

Usage: late_client.py CA HOST:PORT URL N. Prints "DONE <responses>".
"""
import socket
import sys
import time

host, port = sys.argv[2].rsplit(":", 1)
socket.create_connection((host, int(port))).close()
time.sleep(1)

import ssl  # noqa: E402
import urllib.request  # noqa: E402

ctx = ssl.create_default_context(cafile=sys.argv[1])
ok = 0
for _ in range(int(sys.argv[4])):
    with urllib.request.urlopen(sys.argv[3], context=ctx) as r:
        r.read()
    ok += 1
print("DONE", ok, flush=True)
