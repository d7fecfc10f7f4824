"""A grpcio server with generic handlers (no generated code): prints its port."""
import sys
from concurrent import futures

import grpc


def say(request, context):
    if request == b"fail":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such greeting")
    return b"hello " + request


def count(request, context):
    for i in range(3):
        yield bytes([i]) * 10


def total(request_iterator, context):
    return str(sum(len(r) for r in request_iterator)).encode()


def chat(request_iterator, context):
    for r in request_iterator:
        yield r


handlers = {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Count": grpc.unary_stream_rpc_method_handler(count),
    "Total": grpc.stream_unary_rpc_method_handler(total),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Greeter", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
