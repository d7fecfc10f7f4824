"""PyMySQL client of the database end-to-end tests.

Runs a fixed workload on one connection (E2E_HOST, E2E_PORT, E2E_USER,
E2E_PASSWORD, E2E_DB), checks that the server answered as expected, and
prints "DONE <json>". PyMySQL interpolates parameters into the text and
sends COM_QUERY; it never prepares on the server. executemany of an
INSERT ... VALUES sends one statement with a row per parameter set.
"""
import json
import os

import pymysql


def main():
    base = int(os.environ["E2E_BASE"])
    conn = pymysql.connect(host=os.environ["E2E_HOST"], port=int(os.environ["E2E_PORT"]),
                           user=os.environ["E2E_USER"], password=os.environ["E2E_PASSWORD"],
                           database=os.environ["E2E_DB"], autocommit=True)
    cur = conn.cursor()
    for i in range(1, 11):
        cur.execute("SELECT name FROM users WHERE id = %s", (i,))
        cur.fetchone()
    cur.executemany("INSERT INTO items (id, v) VALUES (%s, %s)",
                    [(base + i, "secret-%d" % i) for i in range(20)])
    # About 30 KB of rows.
    cur.execute("SELECT REPEAT(v, 200) FROM items WHERE id >= %s", (base,))
    if len(cur.fetchall()) != 20:
        raise SystemExit("ERROR the large select did not give 20 rows")
    cur.execute("UPDATE users SET name = %s WHERE id IN %s", ("zed", (3, 4, 5)))
    try:
        cur.execute("SELECT name FROM no_such_table WHERE id = 1")
        raise SystemExit("ERROR the missing table was found")
    except pymysql.err.ProgrammingError as e:
        if e.args[0] != 1146:
            raise
    conn.close()
    print("DONE", json.dumps({"ops": 14}), flush=True)


main()
