"""An HTTPS client: urllib, a connection per request.

Usage: client.py CA URL N [URL2 N2 ...]. Fetches each URL N times and
prints "DONE <responses>". HTTP errors are responses too.
"""
import ssl
import sys
import urllib.error
import urllib.request

ctx = ssl.create_default_context(cafile=sys.argv[1])
ok = 0
args = sys.argv[2:]
for url, n in zip(args[::2], args[1::2]):
    for _ in range(int(n)):
        try:
            with urllib.request.urlopen(url, context=ctx) as r:
                r.read()
            ok += 1
        except urllib.error.HTTPError as e:
            e.read()
            ok += 1
print("DONE", ok, flush=True)
