package redis

import (
	"reflect"
	"strings"
	"testing"
)

// The recorded sessions (see capture_test.go) and the operations each
// must give: times are the line numbers of the chunks in the files.
var sessions = map[string]struct {
	want  []op
	texts []string // db.query.text of the first records, with the option on
	stats Stats    // after the connection closed
}{
	"go.session": {
		want: []op{
			ok("HELLO", 2, 3), ok("SELECT", 4, 5),
			fail("CLIENT", "ERR", 6, 7).in("2"), // CLIENT MAINT_NOTIFICATIONS: not a subcommand Redis 7.0 knows
			fail("CLIENT SETINFO", "ERR", 8, 9).in("2"), fail("CLIENT SETINFO", "ERR", 8, 9).in("2"),
			ok("SET", 10, 11).in("2"), ok("GET", 12, 13).in("2"), ok("GET", 14, 15).in("2"), ok("INCR", 16, 17).in("2"),
			fail("LPUSH", "WRONGTYPE", 18, 19).in("2"), fail("_OTHER", "ERR", 20, 21).in("2"),
			ok("HSET", 22, 23).in("2"), ok("HGETALL", 24, 25).in("2"),
			ok("BLPOP", 26, 27).in("2"), ok("BLPOP", 28, 29).in("2"), ok("PING", 30, 31).in("2"),
		},
		texts: []string{"HELLO ?", "SELECT ?", "CLIENT ? ? ? ?", "CLIENT SETINFO ? ?", "CLIENT SETINFO ? ?", "SET ? ?",
			"GET ?", "GET ?", "INCR ?", "LPUSH ? ?", "", "HSET ? ? ? ? ?", "HGETALL ?", "BLPOP ? ?"},
	},
	"go-pipeline.session": {
		want: append(append([]op{
			ok("HELLO", 2, 3), ok("SELECT", 4, 5),
			fail("CLIENT SETINFO", "ERR", 6, 7).in("2"), fail("CLIENT SETINFO", "ERR", 6, 7).in("2"),
		}, pipeline50()...),
			ok("MULTI", 10, 11).in("2"), ok("INCR", 10, 11).in("2"), fail("LPUSH", "WRONGTYPE", 10, 11).in("2"),
			ok("GET", 10, 11).in("2"), ok("EXEC", 10, 11).in("2")),
	},
	"go-pubsub.session": {
		want: []op{
			ok("HELLO", 2, 3), fail("CLIENT", "ERR", 4, 5),
			fail("CLIENT SETINFO", "ERR", 6, 7), fail("CLIENT SETINFO", "ERR", 6, 7),
			ok("SUBSCRIBE", 8, 9), ok("PSUBSCRIBE", 13, 14), ok("PING", 16, 17), ok("UNSUBSCRIBE", 18, 19),
		},
		texts: []string{"HELLO ?", "CLIENT ? ? ? ?", "CLIENT SETINFO ? ?", "CLIENT SETINFO ? ?", "SUBSCRIBE ? ?", "PSUBSCRIBE ?"},
		stats: Stats{OutOfBand: 5}, // three messages on news, one on sport and its pmessage
	},
	"py.session": {
		want: []op{ok("SET", 2, 3), ok("GET", 4, 5), ok("HSET", 6, 7), ok("HGETALL", 8, 9), fail("LPUSH", "WRONGTYPE", 10, 11)},
	},
	"py-pipeline.session": {
		want: append([]op{ok("MULTI", 2, 3), ok("INCRBY", 2, 3), ok("GET", 2, 3), fail("INCRBY", "ERR", 2, 3), ok("EXEC", 2, 3)},
			repeat(ok("SET", 4, 5), 10)...),
		texts: []string{"MULTI", "INCRBY ? ?", "GET ?", "INCRBY ? ?", "EXEC", "SET ? ?"},
	},
	"py-pubsub.session": {
		want:  []op{ok("SUBSCRIBE", 2, 3), ok("PING", 7, 8), ok("UNSUBSCRIBE", 9, 10)},
		texts: []string{"SUBSCRIBE ? ?", "PING ?", "UNSUBSCRIBE"},
		stats: Stats{OutOfBand: 3},
	},
	"cli.session": {
		want: []op{
			ok("COMMAND DOCS", 2, 2, 3, 7), ok("SELECT", 8, 9), ok("SET", 10, 11).in("1"), ok("GET", 12, 13).in("1"),
			fail("INCR", "ERR", 14, 15).in("1"), fail("_OTHER", "ERR", 16, 17).in("1"),
			ok("MULTI", 18, 19).in("1"), ok("INCR", 20, 21).in("1"), fail("LPUSH", "WRONGTYPE", 22, 23).in("1"),
			ok("EXEC", 24, 25).in("1"), fail("SUBSCRIBE", "ERR", 26, 27).in("1"), ok("CLIENT SETNAME", 28, 29).in("1"),
			ok("CONFIG GET", 30, 31).in("1"), ok("PING", 32, 33).in("1"),
		},
		texts: []string{"COMMAND DOCS", "SELECT ?", "SET ? ?"},
	},
	"inline.session": {
		want: []op{ok("PING", 2, 3), ok("SET", 4, 5), ok("GET", 6, 7), ok("GET", 8, 9), fail("_OTHER", "ERR", 10, 11),
			ok("SELECT", 12, 13), ok("EXISTS", 14, 15).in("5")},
		texts: []string{"PING", "SET ? ?", "GET ?", "GET ?", "", "SELECT ?", "EXISTS ?"},
	},
}

// pipeline50 is go-redis's pipeline: SET, GET and INCR in turn, written
// in one chunk (line 8) and answered in one (line 9).
func pipeline50() []op {
	var ops []op
	for i := range 50 {
		ops = append(ops, ok([]string{"SET", "GET", "INCR"}[i%3], 8, 9).in("2"))
	}
	return ops
}

func repeat(o op, n int) []op {
	var ops []op
	for range n {
		ops = append(ops, o)
	}
	return ops
}

func TestSessions(t *testing.T) {
	for name, s := range sessions {
		t.Run(name, func(t *testing.T) {
			steps := append(readSession(t, name), closeAt(1000))
			c := newClient(textOptions)
			r := play(c, steps)
			equalOps(t, ops(t, r.done), s.want)
			for i, want := range s.texts {
				if i < len(r.done) && r.done[i].QueryText != want {
					t.Errorf("record %d: query text %q, want %q", i, r.done[i].QueryText, want)
				}
			}
			if got := c.Stats(); got != s.stats {
				t.Errorf("stats %+v, want %+v", got, s.stats)
			}
			if r.failed != nil {
				t.Errorf("failed %v", r.failed)
			}
			if r.started != len(s.want) {
				t.Errorf("%d started, %d reported", r.started, len(s.want))
			}
		})
	}
}

// TestSessionsSplit replays the sessions cut in pieces of a few bytes: the
// records are the same but for their times.
func TestSessionsSplit(t *testing.T) {
	for name := range sessions {
		t.Run(name, func(t *testing.T) {
			steps := readSession(t, name)
			whole := play(newClient(textOptions), append(steps, closeAt(1000)))
			for _, size := range []int{1, 2, 3, 7, 16} {
				var cut []step
				for _, s := range steps {
					for i := 0; i < len(s.data); i += size {
						p := s
						p.data = s.data[i:min(len(s.data), i+size)]
						cut = append(cut, p)
					}
				}
				r := play(newClient(textOptions), append(cut, closeAt(1000)))
				if !reflect.DeepEqual(r.done, whole.done) {
					t.Fatalf("pieces of %d: %+v\nwant %+v", size, ops(t, r.done), ops(t, whole.done))
				}
			}
		})
	}
}

// TestSessionsCaptured replays the sessions as the kernel reports them:
// the first 4 KiB of each chunk, its length and its last 16 bytes. Only
// redis-cli's COMMAND DOCS reply (218 KB of nested arrays) loses its
// place: pairing stops there, and every command is counted unreported.
func TestSessionsCaptured(t *testing.T) {
	for name, s := range sessions {
		t.Run(name, func(t *testing.T) {
			var steps []step
			for _, st := range readSession(t, name) {
				if len(st.data) > 4096 {
					st = moved(st.dir, st.t, st.data, 4096)
				}
				steps = append(steps, st)
			}
			c := newClient(textOptions)
			r := play(c, append(steps, closeAt(1000)))
			if name != "cli.session" {
				equalOps(t, ops(t, r.done), s.want)
				return
			}
			if len(r.done) != 0 || c.Stats().Lost != 1 || c.Stats().Unreported != uint64(len(s.want)) || r.failed[reasonGap] != 1 {
				t.Errorf("%d records, stats %+v, failed %v", len(r.done), c.Stats(), r.failed)
			}
		})
	}
}

// TestSessionsScribbled checks that no session's records hold the
// caller's bytes: play scribbles over every segment after feeding it.
func TestSessionsScribbled(t *testing.T) {
	for name := range sessions {
		r := play(newClient(textOptions), append(readSession(t, name), closeAt(1000)))
		for _, rec := range r.done {
			for _, s := range []string{rec.Operation, rec.Namespace, rec.QueryText, rec.StatusCode, rec.ErrorType} {
				if strings.ContainsRune(s, 0xA5) || strings.Contains(s, "\xa5") {
					t.Errorf("%s: %q holds scribbled bytes", name, s)
				}
			}
		}
	}
}
