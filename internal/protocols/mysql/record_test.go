package mysql

import (
	"net/netip"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// TestRecordFill checks what a record writes into a span and which
// series it counts in: MariaDB's system name, the database, the error
// number as status code and error type.
func TestRecordFill(t *testing.T) {
	steps := append(handshake(0, "shop"),
		out(10, query("SELECT * FROM nope")),
		in(11, pkt(1, errPayload(1146, "42S02", "Table 'shop.nope' doesn't exist"))),
		closeAt(12))
	s := play(NewConn(noText), steps)
	if len(s.records) != 1 {
		t.Fatalf("%d records", len(s.records))
	}
	r := &s.records[0]
	var _ protocols.Record = r
	conn := &protocols.ConnInfo{
		Local:   netip.MustParseAddrPort("127.0.0.1:40000"),
		Remote:  netip.MustParseAddrPort("127.0.0.1:3306"),
		LocalIP: "127.0.0.1", RemoteIP: "127.0.0.1",
	}
	span := ptrace.NewSpan()
	r.Fill(span, conn)
	attrs := span.Attributes().AsRaw()
	for k, want := range map[string]any{
		"db.system.name":          MariaDB,
		"db.namespace":            "shop",
		"db.response.status_code": "1146",
		"error.type":              "1146",
		"server.address":          "127.0.0.1",
		"server.port":             int64(3306),
	} {
		if attrs[k] != want {
			t.Errorf("%s = %v, want %v", k, attrs[k], want)
		}
	}
	if _, ok := attrs["db.query.text"]; ok {
		t.Error("query text recorded with QueryText off")
	}
	if span.Status().Code() != ptrace.StatusCodeError {
		t.Errorf("status %v", span.Status().Code())
	}
	key, obs, ok := r.Metric(conn)
	if !ok || key.Family != semconv.DBClient || obs[0] != 1e-9 {
		t.Errorf("metric %+v %v %v", key, obs, ok)
	}
	if fams := Protocol.Families(); len(fams) != 1 || fams[0] != semconv.DBClient {
		t.Errorf("families %v", fams)
	}
	if Protocol.Name() != "mysql" {
		t.Errorf("name %q", Protocol.Name())
	}
}
