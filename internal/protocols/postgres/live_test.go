package postgres

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// TestLive runs pgx against a fresh server through the recording proxy,
// and the parser over what moved: the recorded sessions' claims, checked
// against today's server and driver. -short skips it.
func TestLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	srv := dbservers.StartPostgres(t)
	rec := newRecorder(t, "127.0.0.1:"+strconv.Itoa(srv.Port))
	setUp(t, srv)
	rec.take(t) // nothing went through the proxy yet
	dsn := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable",
		dbservers.PostgresUser, dbservers.PostgresPassword, rec.port(), dbservers.PostgresDatabase)
	ctx := context.Background()
	conn := pgxConnect(t, dsn)
	for i := range 20 {
		var name string
		must(t, "", conn.QueryRow(ctx, "SELECT name FROM users WHERE id = $1", i%10+1).Scan(&name))
	}
	_, err := conn.Exec(ctx, "INSERT INTO users (id, name) VALUES ($1, $2)", 1, "dup")
	must(t, "23505", err)
	must(t, "", conn.Close(ctx))
	conns := rec.take(t)
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	s, c := play(t, withText, sessionSteps(conns[0]))
	sel := brief{Op: "SELECT", Coll: "users", Summary: "SELECT users", Text: "SELECT name FROM users WHERE id = $1", NS: "otel", Prepared: true}
	var want []brief
	for range 20 {
		want = append(want, sel)
	}
	want = append(want, brief{Op: "INSERT", Coll: "users", Summary: "INSERT users",
		Text: "INSERT INTO users (id, name) VALUES ($1, $2)", NS: "otel", Status: "23505", Prepared: true})
	wantBriefs(t, s, want...)
	if c.Stats() != (Stats{}) {
		t.Errorf("stats %+v", c.Stats())
	}
}
