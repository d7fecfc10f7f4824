"""redis-py client of the database end-to-end tests.

Runs a fixed workload on one connection (E2E_HOST, E2E_PORT), checks that
the server answered as expected, and prints "DONE <json>" with the wall
clock (Unix nanoseconds) just before and after its pipeline of 50.
"""
import json
import os
import time

import redis


def main():
    base = int(os.environ["E2E_BASE"])
    pool = redis.ConnectionPool(host=os.environ["E2E_HOST"], port=int(os.environ["E2E_PORT"]),
                                max_connections=1)
    r = redis.Redis(connection_pool=pool)
    prefix = "redispy:%d:" % base
    for i in range(10):
        r.set(prefix + str(i), "secret-%d" % i)
    for i in range(10):
        r.get(prefix + str(i))
    pipe = r.pipeline(transaction=False)
    for _ in range(50):
        pipe.incr(prefix + "counter")
    start = time.time_ns()
    results = pipe.execute()
    end = time.time_ns()
    if results != list(range(1, 51)):
        raise SystemExit("ERROR pipeline answered %r" % results)
    tx = r.pipeline(transaction=True)
    tx.set(prefix + "tx", "1")
    tx.incr(prefix + "tx")
    if tx.execute() != [True, 2]:
        raise SystemExit("ERROR the transaction failed")
    try:
        r.lpush(prefix + "0", "x")
        raise SystemExit("ERROR LPUSH on a string worked")
    except redis.exceptions.ResponseError as e:
        if not str(e).startswith("WRONGTYPE"):
            raise
    try:
        r.incr(prefix + "0")
        raise SystemExit("ERROR INCR of a string worked")
    except redis.exceptions.ResponseError as e:
        if "not an integer" not in str(e):
            raise
    pool.disconnect()
    print("DONE", json.dumps({"ops": 76, "pipeline_start": start, "pipeline_end": end}), flush=True)


main()
