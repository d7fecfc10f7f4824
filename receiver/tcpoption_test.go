package receiver

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"
)

func TestTCPCaller(t *testing.T) {
	id := tracecontext.Identity{TraceID: [16]byte{1, 2}, SpanID: [8]byte{3}, ParentID: [8]byte{4, 5}, Flags: 1}
	x := protocols.Exchange{Chosen: tracecontext.Chosen{Kind: tracecontext.Served, Identity: id}}
	tcpCaller(&x)
	assert.Equal(t, "00-01020000000000000000000000000000-0405000000000000-01", x.Traceparent,
		"the caller's context from the option, as if from a header")

	x = protocols.Exchange{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		Chosen: tracecontext.Chosen{Kind: tracecontext.Served, Identity: id}}
	tcpCaller(&x)
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", x.Traceparent, "a header stays")

	root := id
	root.ParentID = [8]byte{}
	x = protocols.Exchange{Chosen: tracecontext.Chosen{Kind: tracecontext.Served, Identity: root}}
	tcpCaller(&x)
	assert.Empty(t, x.Traceparent, "no caller: a root")

	x = protocols.Exchange{Chosen: tracecontext.Chosen{Kind: tracecontext.Injected, Identity: id}}
	tcpCaller(&x)
	assert.Empty(t, x.Traceparent, "a client's ids are not a caller's")
}
