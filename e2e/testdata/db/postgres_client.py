"""psycopg2 client of the database end-to-end tests.

Runs a fixed workload on one connection (E2E_DSN, a libpq URL), checks
that the server answered as expected, and prints "DONE <json>". psycopg2
sends every statement as a simple Query with its parameters interpolated
into the text, so nothing is prepared on the server.
"""
import io
import json
import os

import psycopg2
import psycopg2.errors


def main():
    base = int(os.environ["E2E_BASE"])
    conn = psycopg2.connect(os.environ["E2E_DSN"])
    conn.autocommit = True  # no BEGIN/COMMIT around each statement
    cur = conn.cursor()
    for i in range(1, 11):
        cur.execute("SELECT name FROM users WHERE id = %s", (i,))
        cur.fetchone()
    cur.executemany("INSERT INTO items (id, v) VALUES (%s, %s)",
                    [(base + i, "secret-%d" % i) for i in range(20)])
    # COPY FROM STDIN: about 25 KB of CopyData, in writes longer than the capture.
    rows = "".join("%d\tsecret-copy-%d\n" % (base + 100 + i, i) for i in range(1000))
    cur.copy_expert("COPY items (id, v) FROM STDIN", io.StringIO(rows))
    # A NoticeResponse before the command completes.
    cur.execute("DO $$BEGIN RAISE NOTICE 'secret notice'; END$$")
    if not any("secret notice" in n for n in conn.notices):
        raise SystemExit("ERROR no notice: %r" % conn.notices)
    # About 250 KB of rows.
    cur.execute("SELECT repeat(v, 200) FROM items WHERE id BETWEEN %s AND %s", (base, base + 199))
    if len(cur.fetchall()) != 120:
        raise SystemExit("ERROR the large select did not give 120 rows")
    cur.execute("UPDATE users SET name = %s WHERE id IN %s", ("zed", (3, 4, 5)))
    try:
        cur.execute("SELECT name FROM no_such_table WHERE id = 1")
        raise SystemExit("ERROR the missing table was found")
    except psycopg2.errors.UndefinedTable:
        pass
    cur.execute("SELECT 1; SELECT 2")  # one Query message, two statements
    conn.close()
    print("DONE", json.dumps({"ops": 36}), flush=True)


main()
