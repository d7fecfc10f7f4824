package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/dbservers"
)

// TestLive runs go-redis against the redis-server installed here, through
// the recording proxy, and feeds what moved to the parser: the recorded
// sessions in testdata are checked against fixed expectations; this
// checks that the installed server and library still speak as they did.
func TestLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := dbservers.StartRedis(t)
	p := newProxy(t, srv.Addr)
	ctx := context.Background()
	rdb := goredis.NewClient(&goredis.Options{Addr: p.addr(), DB: 3, PoolSize: 1})
	for i := range 20 {
		k := "live:" + strconv.Itoa(i)
		if err := rdb.Set(ctx, k, i, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Get(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HIncrBy(ctx, "live:0", "f", 1).Err(); err == nil {
		t.Fatal("HINCRBY on a string succeeded")
	}
	rdb.Close()
	conns := p.sessions(t, 1)
	var steps []step
	for i, ch := range conns[0] {
		steps = append(steps, step{dir: ch.dir, data: string(ch.data), t: uint64(i + 1)})
	}
	c := newClient(textOptions)
	r := play(c, append(steps, closeAt(uint64(len(steps)+1))))
	count := map[string]int{}
	for _, o := range ops(t, r.done) {
		if o.T[3] == 0 {
			t.Errorf("%s without a reply", o.Name)
		}
		count[o.Name+" "+o.Status+" "+o.NS]++
	}
	for k, n := range map[string]int{"HELLO  0": 1, "SELECT  0": 1, "SET  3": 20, "GET  3": 20, "HINCRBY WRONGTYPE 3": 1} {
		if count[k] != n {
			t.Errorf("%q: %d records, want %d (all: %v)", k, count[k], n, count)
		}
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("stats %+v", s)
	}
}
