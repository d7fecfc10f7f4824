package postgres

import (
	"reflect"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// Replays of sessions recorded from real clients and a real server
// (TestCapture), with every record they must give.

func TestSessionPgxSimple(t *testing.T) {
	conns := readSession(t, "pgx-simple")
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	s, c := play(t, withText, sessionSteps(conns[0]))
	wantBriefs(t, s,
		brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT name FROM users WHERE id = ?", NS: "otel"},
		brief{Op: "INSERT", Coll: "orders", Summary: "INSERT orders", Text: "INSERT INTO orders (user_id, amount, note) VALUES ( ? , ? , ? )", NS: "otel"},
		// Two statements in one Query: one batch operation.
		brief{Op: "BATCH", Summary: "BATCH", Text: "UPDATE users SET email = ? WHERE id = ?; DELETE FROM orders WHERE amount > ?", NS: "otel", Batch: 2},
		brief{Text: "SELEC ?", NS: "otel", Status: "42601"},
		brief{Op: "INSERT", Coll: "users", Summary: "INSERT users", Text: "INSERT INTO users (id, name) VALUES (?, ?)", NS: "otel", Status: "23505"},
		// Answered with a NoticeResponse before its CommandComplete.
		brief{Op: "DROP", Coll: "no_such_table", Summary: "DROP TABLE no_such_table", Text: "DROP TABLE IF EXISTS no_such_table", NS: "otel"},
		brief{Op: "LISTEN", Text: "LISTEN events", NS: "otel"},
		// Answered with a NotificationResponse before its ReadyForQuery.
		brief{Op: "NOTIFY", Text: "NOTIFY events, ?", NS: "otel"},
		brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT id, name FROM users ORDER BY id", NS: "otel"},
	)
	wantTimes(t, s, 0, times{7, 7, 8, 8})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
	if len(s.started) != len(s.done) {
		t.Errorf("%d started, %d done", len(s.started), len(s.done))
	}
}

func TestSessionPgxExtended(t *testing.T) {
	conns := readSession(t, "pgx-extended")
	s, c := play(t, withText, sessionSteps(conns[0]))
	sel := brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT name FROM users WHERE id = $1", NS: "otel", Prepared: true}
	var want []brief
	for range 100 {
		want = append(want, sel) // prepared once (no record), executed 100 times
	}
	dup := brief{Op: "INSERT", Coll: "users", Summary: "INSERT users", Text: "INSERT INTO users (id, name) VALUES ($1, $2)", NS: "otel", Status: "23505", Prepared: true}
	want = append(want,
		brief{Op: "INSERT", Coll: "orders", Summary: "INSERT orders", Text: "INSERT INTO orders (user_id, amount) VALUES ($1, $2)", NS: "otel", Prepared: true},
		// QueryExecModeExec: Parse, Bind, Describe, Execute, Sync at once.
		brief{Op: "UPDATE", Coll: "users", Summary: "UPDATE users", Text: "UPDATE users SET name = name WHERE id = $1", NS: "otel"},
		// The prepare failed: the statement's failure.
		brief{Text: "SELEC $1", NS: "otel", Status: "42601"},
		// pgx drops its cached statement after the error and prepares it
		// again.
		dup, dup,
	)
	wantBriefs(t, s, want...)
	wantTimes(t, s, 0, times{9, 9, 10, 10})
	wantTimes(t, s, 99, times{207, 207, 208, 208})
	wantTimes(t, s, 102, times{215, 215, 216, 216})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestSessionPgxBatch(t *testing.T) {
	conns := readSession(t, "pgx-batch")
	s, c := play(t, withText, sessionSteps(conns[0]))
	ins := brief{Op: "INSERT", Coll: "items", Summary: "INSERT items", Text: "INSERT INTO items (id, label) VALUES ($1, $2)", NS: "otel", Prepared: true}
	wantBriefs(t, s,
		// One write, one Sync: four Executes, four records.
		ins, ins,
		brief{Op: "SELECT", Coll: "items", Summary: "SELECT items", Text: "SELECT count(*) FROM items", NS: "otel", Prepared: true},
		brief{Op: "UPDATE", Coll: "items", Summary: "UPDATE items", Text: "UPDATE items SET label = $1 WHERE id = $2", NS: "otel", Prepared: true},
		brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT id FROM users WHERE id = $1", NS: "otel", Prepared: true},
		// The third query of the batch was skipped after this error.
		brief{Op: "INSERT", Coll: "users", Summary: "INSERT users", Text: "INSERT INTO users (id, name) VALUES ($1, $2)", NS: "otel", Status: "23505", Prepared: true},
	)
	for i := range 4 {
		wantTimes(t, s, i, times{9, 9, 10, 10})
	}
	if c.Stats() != (Stats{SkippedAfterError: 1}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestSessionPsql(t *testing.T) {
	conns := readSession(t, "psql")
	if len(conns) != 2 {
		t.Fatalf("%d connections", len(conns))
	}
	// psql -c sends its whole text as one Query; each begins with an
	// SSLRequest the server declines.
	s, c := play(t, withText, sessionSteps(conns[0]))
	wantBriefs(t, s, brief{Op: "BATCH", Summary: "BATCH",
		Text: "BEGIN; INSERT INTO items VALUES (?, ?); SELECT * FROM items WHERE id = ?; COMMIT", NS: "otel", Batch: 4})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
	// psql -f splits a line of two statements into two Queries.
	s, c = play(t, withText, sessionSteps(conns[1]))
	wantBriefs(t, s,
		brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT count(*) FROM users;", NS: "otel"},
		brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT name FROM users WHERE id = ?;", NS: "otel"},
		// \copy FROM: 300 rows of CopyData.
		brief{Op: "COPY", Coll: "items", Summary: "COPY items", Text: "COPY items FROM STDIN WITH (FORMAT csv)", NS: "otel"},
		// \copy TO: rows counted through.
		brief{Op: "COPY", Coll: "items", Summary: "COPY SELECT items", Text: "COPY ( SELECT * FROM items ORDER BY id ) TO STDOUT", NS: "otel"},
		brief{Op: "SELECT", Coll: "no_such_table", Summary: "SELECT no_such_table", Text: "SELECT * FROM no_such_table;", NS: "otel", Status: "42P01"},
	)
	wantTimes(t, s, 2, times{13, 13, 14, 16})
	wantTimes(t, s, 3, times{17, 17, 18, 20})
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

func TestSessionPsycopg2(t *testing.T) {
	conns := readSession(t, "psycopg2")
	s, c := play(t, withText, sessionSteps(conns[0]))
	b := func(op, text string) brief { return brief{Op: op, Summary: op, Text: text, NS: "otel"} }
	ins := brief{Op: "INSERT", Coll: "orders", Summary: "INSERT orders", Text: "INSERT INTO orders (user_id, amount, note) VALUES (?, ?, ?)", NS: "otel"}
	wantBriefs(t, s,
		b("BEGIN", "BEGIN"),
		brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT name FROM users WHERE id = ?", NS: "otel"},
		ins, ins,
		b("COMMIT", "COMMIT"),
		b("BEGIN", "BEGIN"),
		brief{Op: "INSERT", Coll: "users", Summary: "INSERT users", Text: "INSERT INTO users (id, name) VALUES (?, ?)", NS: "otel", Status: "23505"},
		b("ROLLBACK", "ROLLBACK"),
		b("BEGIN", "BEGIN"),
		brief{Op: "COPY", Coll: "items", Summary: "COPY items", Text: "COPY items (id, label) FROM STDIN", NS: "otel"},
		b("COMMIT", "COMMIT"),
		b("BEGIN", "BEGIN"),
		brief{Op: "SELECT", Coll: "items", Summary: "SELECT items", Text: "SELECT count(*) FROM items", NS: "otel"},
	)
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}

// Without Options.QueryText no text is kept, and nothing else changes.
func TestSessionsWithoutText(t *testing.T) {
	for _, name := range []string{"pgx-simple", "pgx-extended", "pgx-batch", "psql", "psycopg2"} {
		for i, conn := range readSession(t, name) {
			with, _ := play(t, withText, sessionSteps(conn))
			without, _ := play(t, &protocols.Options{}, sessionSteps(conn))
			want := briefs(with.done)
			for j := range want {
				want[j].Text = ""
			}
			if got := briefs(without.done); !reflect.DeepEqual(got, want) {
				t.Errorf("%s conn %d:\n got %v\nwant %v", name, i, got, want)
			}
		}
	}
}

func wantTimes(t *testing.T, s *sink, i int, want times) {
	t.Helper()
	if i >= len(s.done) {
		t.Errorf("no record %d", i)
		return
	}
	if got := timesOf(&s.done[i]); got != want {
		t.Errorf("record %d: times %+v, want %+v", i, got, want)
	}
}
