"""A grpcio client of grpc_server.py: one call of each kind, in order, on one channel.

    1  Say, traceparent in its metadata   OK
    3  Say(b"fail")                       NOT_FOUND
    5  Count (server streaming)           OK
    7  Total (client streaming)           OK
    9  Chat (bidi)                        OK
    11 Nope                               UNIMPLEMENTED
"""
import sys

import grpc

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ch = grpc.insecure_channel(sys.argv[1])
say = ch.unary_unary("/demo.Greeter/Say")
assert say(b"world", metadata=(("traceparent", TP),)) == b"hello world"
try:
    say(b"fail")
    raise SystemExit("fail did not fail")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND, e
assert len(list(ch.unary_stream("/demo.Greeter/Count")(b"x"))) == 3
assert ch.stream_unary("/demo.Greeter/Total")(iter([b"a" * 10, b"b" * 20])) == b"30"
assert list(ch.stream_stream("/demo.Greeter/Chat")(iter([b"1", b"2", b"3"]))) == [b"1", b"2", b"3"]
try:
    ch.unary_unary("/demo.Greeter/Nope")(b"")
    raise SystemExit("Nope did not fail")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
ch.close()
