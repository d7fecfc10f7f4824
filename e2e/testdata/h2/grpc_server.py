"""A grpcio server of demo.Greeter with generic handlers and raw bytes (no
generated code). Prints "READY 127.0.0.1:<port>".

  Say    (unary)            b"fail:CODE" aborts with CODE at once (trailers-only),
                            b"late:CODE" after its headers; else b"hello " + request
  Count  (server streaming) 3 messages; b"fail" aborts DATA_LOSS after one
  Total  (client streaming) the count of bytes read
  Chat   (bidi)             echoes each message
"""
from concurrent import futures

import grpc


def say(request, context):
    if request.startswith(b"fail:") or request.startswith(b"late:"):
        if request.startswith(b"late:"):
            context.send_initial_metadata((("x-edge", "headers-first"),))
        code = grpc.StatusCode[request[5:].decode()]
        context.abort(code, "asked for " + code.name)
    return b"hello " + request


def count(request, context):
    for i in range(3):
        yield bytes([i]) * 10
        if request == b"fail":
            context.abort(grpc.StatusCode.DATA_LOSS, "lost the rest")


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
print("READY 127.0.0.1:%d" % port, flush=True)
server.wait_for_termination()
