"""An HTTPS client on one keep-alive connection, through the system's
OpenSSL (Python's ssl module).

Usage: keepalive_client.py CA HOST PORT N. Prints "READY waiting", waits
for a line on stdin, then sends N requests one after the other: GET
/py/I, odd ones POST /py/I with an I*5000-byte body. Prints "ECHO /py/I
STATUS BODY" for each, then "DONE".
"""
import http.client
import ssl
import sys

ca, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
print("READY waiting", flush=True)
sys.stdin.readline()
conn = http.client.HTTPSConnection(host, port, context=ctx)
for i in range(n):
    if i % 2 == 1:
        conn.request("POST", "/py/%d" % i, body=b"y" * (i * 5000))
    else:
        conn.request("GET", "/py/%d" % i)
    resp = conn.getresponse()
    body = resp.read().decode()
    print("ECHO /py/%d %d %s" % (i, resp.status, body), flush=True)
print("DONE", flush=True)
