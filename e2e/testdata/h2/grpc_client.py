"""A grpcio client of grpc_server.py: every call below in order on one
channel, then "DONE <calls that did not end as expected>".

  Say    x4 OK (the first with a traceparent), x2 NOT_FOUND (trailers-only),
         x1 INTERNAL (after its headers)
  Count  x2 OK, x1 DATA_LOSS after one message
  Total  x2 OK
  Chat   x2 OK
  Nope   x1 UNIMPLEMENTED
"""
import sys

import grpc

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
failed = 0


def expect(call, code):
    global failed
    try:
        call()
        got = grpc.StatusCode.OK
    except grpc.RpcError as e:
        got = e.code()
    if got != code:
        print("python client: got %s, want %s" % (got, code), file=sys.stderr)
        failed += 1


ch = grpc.insecure_channel(sys.argv[1])
say = ch.unary_unary("/demo.Greeter/Say")
count = ch.unary_stream("/demo.Greeter/Count")
total = ch.stream_unary("/demo.Greeter/Total")
chat = ch.stream_stream("/demo.Greeter/Chat")
OK = grpc.StatusCode.OK

expect(lambda: say(b"world", metadata=(("traceparent", TP),)), OK)
for i in range(3):
    expect(lambda: say(b"again"), OK)
for i in range(2):
    expect(lambda: say(b"fail:NOT_FOUND"), grpc.StatusCode.NOT_FOUND)
expect(lambda: say(b"late:INTERNAL"), grpc.StatusCode.INTERNAL)
for i in range(2):
    expect(lambda: list(count(b"x")), OK)
expect(lambda: list(count(b"fail")), grpc.StatusCode.DATA_LOSS)
for i in range(2):
    expect(lambda: total(iter([b"a" * 10, b"b" * 20])), OK)
for i in range(2):
    expect(lambda: list(chat(iter([b"1", b"2", b"3"]))), OK)
expect(lambda: ch.unary_unary("/demo.Greeter/Nope")(b""), grpc.StatusCode.UNIMPLEMENTED)
ch.close()
print("DONE %d" % failed, flush=True)
