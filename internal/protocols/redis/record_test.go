package redis

import (
	"net/netip"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// TestRecordFill checks what records write into spans and which series
// they count in: the command as span name (never the database index), the
// index as namespace, the error prefix as status code and error type.
func TestRecordFill(t *testing.T) {
	c := newClient(textOptions)
	r := play(c, []step{
		out(1, cmd("SELECT", "2")), in(2, "+OK\r\n"),
		out(3, cmd("LPUSH", "k", "secret")), in(1003, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
		out(1004, cmd("GET", "k")), in(1005, "$1\r\nv\r\n"),
	})
	if len(r.done) != 3 {
		t.Fatalf("%d records", len(r.done))
	}
	conn := &protocols.ConnInfo{
		Local:   netip.MustParseAddrPort("127.0.0.1:40000"),
		Remote:  netip.MustParseAddrPort("127.0.0.1:6379"),
		LocalIP: "127.0.0.1", RemoteIP: "127.0.0.1",
	}
	rec := &r.done[1]
	var _ protocols.Record = rec
	span := ptrace.NewSpan()
	rec.Fill(span, conn)
	if span.Name() != "LPUSH" {
		t.Errorf("span name %q", span.Name())
	}
	attrs := span.Attributes().AsRaw()
	want := map[string]any{
		"db.system.name":          semconv.Redis,
		"db.operation.name":       "LPUSH",
		"db.namespace":            "2",
		"db.query.text":           "LPUSH ? ?",
		"db.query.summary":        "LPUSH",
		"db.response.status_code": "WRONGTYPE",
		"error.type":              "WRONGTYPE",
		"server.address":          "127.0.0.1",
		"server.port":             int64(6379),
		"network.peer.address":    "127.0.0.1",
		"network.peer.port":       int64(6379),
	}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %v, want %v", k, attrs[k], v)
		}
	}
	if len(attrs) != len(want) {
		t.Errorf("attributes %v", attrs)
	}
	if span.Status().Code() != ptrace.StatusCodeError {
		t.Errorf("status %v", span.Status().Code())
	}
	key, obs, ok := rec.Metric(conn)
	if !ok || key.Family != semconv.DBClient || obs[0] != 1e-6 {
		t.Errorf("metric %+v %v %v", key, obs, ok)
	}
	// A success: no status, no error attributes.
	span = ptrace.NewSpan()
	r.done[2].Fill(span, conn)
	attrs = span.Attributes().AsRaw()
	if span.Name() != "GET" || span.Status().Code() != ptrace.StatusCodeUnset || attrs["error.type"] != nil || attrs["db.response.status_code"] != nil {
		t.Errorf("span %q %v %v", span.Name(), span.Status().Code(), attrs)
	}
	// Operations of different commands and errors are different series;
	// the values of the arguments never are.
	k1, _, _ := r.done[2].Metric(conn)
	r2 := play(newClient(noTextOptions), []step{out(1, cmd("SELECT", "2")), in(2, "+OK\r\n"), out(3, cmd("GET", "other")), in(4, "$-1\r\n")})
	k2, _, _ := r2.done[1].Metric(conn)
	if k1 != k2 {
		t.Errorf("series differ: %+v %+v", k1, k2)
	}
}
