package postgres

import (
	"net/netip"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

func TestRecordFill(t *testing.T) {
	conn := &protocols.ConnInfo{Remote: netip.MustParseAddrPort("10.0.0.7:5432"), RemoteIP: "10.0.0.7"}
	r := &Record{
		Exchange: protocols.Exchange{Role: protocols.RoleClient, RequestStart: 1, RequestEnd: 1, ResponseStart: 2, ResponseEnd: 3},
		DB: semconv.DB{System: semconv.PostgreSQL, Operation: "BATCH INSERT", Collection: "t", Namespace: "shop",
			Summary: "BATCH INSERT t", QueryText: "INSERT INTO t VALUES (?); INSERT INTO t VALUES (?)",
			StatusCode: "23505", ErrorType: "23505", Error: true},
		BatchSize: 2,
	}
	span := ptrace.NewSpan()
	r.Fill(span, conn)
	if span.Name() != "BATCH INSERT t" || span.Status().Code() != ptrace.StatusCodeError {
		t.Errorf("name %q, status %v", span.Name(), span.Status().Code())
	}
	want := map[string]any{
		"db.system.name": "postgresql", "db.operation.name": "BATCH INSERT", "db.collection.name": "t",
		"db.namespace": "shop", "db.query.summary": "BATCH INSERT t",
		"db.query.text":           "INSERT INTO t VALUES (?); INSERT INTO t VALUES (?)",
		"db.response.status_code": "23505", "error.type": "23505", "db.operation.batch.size": int64(2),
		"server.address": "10.0.0.7", "server.port": int64(5432),
		"network.peer.address": "10.0.0.7", "network.peer.port": int64(5432),
	}
	got := span.Attributes().AsRaw()
	if len(got) != len(want) {
		t.Errorf("attributes %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	key, obs, ok := r.Metric(conn)
	if !ok || key.Family != semconv.DBClient || obs[0] != 2e-9 {
		t.Errorf("metric %+v %v %v", key, obs, ok)
	}
	// One statement: no batch size.
	r.BatchSize = 0
	span = ptrace.NewSpan()
	r.Fill(span, conn)
	if _, ok := span.Attributes().Get("db.operation.batch.size"); ok {
		t.Error("batch size on a single operation")
	}
}
