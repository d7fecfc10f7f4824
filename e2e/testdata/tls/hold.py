"""Maps the system's libssl and waits: a watched process that keeps the
library probed for the short-lived clients that map it too."""
import ssl
import sys

print("READY 0", ssl.OPENSSL_VERSION, flush=True)
sys.stdin.read()
