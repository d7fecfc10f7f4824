// Package tracecontext reads and writes W3C Trace Context, and holds the
// identities spans get: the ids the kernel chose for a request, and the
// place of a span in its trace.
package tracecontext // import "github.com/otelcol-ebpf/ebpfreceiver/internal/tracecontext"

import (
	"encoding/hex"
	"math/rand/v2"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Context is the W3C trace context a span is part of.
type Context struct {
	TraceID pcommon.TraceID
	SpanID  pcommon.SpanID // the caller's span: the new span's parent
	Flags   byte
}

// Parse reads a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>", or a later version's longer value whose
// first four fields are those). It returns false for anything else, and
// for the all-zero ids the specification calls invalid.
func Parse(v string) (Context, bool) {
	var c Context
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return c, false
	}
	// Version 00 is exactly 55 bytes; a later version may add fields,
	// each after a dash.
	if v[0:2] == "ff" || (v[0:2] == "00" && len(v) != 55) || (len(v) > 55 && v[55] != '-') {
		return c, false
	}
	var version [1]byte
	var flags [1]byte
	if !decodeHex(version[:], v[0:2]) || !decodeHex(c.TraceID[:], v[3:35]) ||
		!decodeHex(c.SpanID[:], v[36:52]) || !decodeHex(flags[:], v[53:55]) {
		return c, false
	}
	if c.TraceID.IsEmpty() || c.SpanID.IsEmpty() {
		return c, false
	}
	c.Flags = flags[0]
	return c, true
}

// decodeHex decodes lowercase hex only, as traceparent requires.
func decodeHex(dst []byte, s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// Format formats a traceparent value for span spanID of trace traceID.
func Format(traceID pcommon.TraceID, spanID pcommon.SpanID, flags byte) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

// NewTraceID returns a random, valid trace id.
func NewTraceID() pcommon.TraceID {
	var id pcommon.TraceID
	for id.IsEmpty() {
		putUint64(id[0:8], rand.Uint64())
		putUint64(id[8:16], rand.Uint64())
	}
	return id
}

// NewSpanID returns a random, valid span id.
func NewSpanID() pcommon.SpanID {
	var id pcommon.SpanID
	for id.IsEmpty() {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// Identity places a span in its trace.
type Identity struct {
	TraceID  pcommon.TraceID
	SpanID   pcommon.SpanID
	ParentID pcommon.SpanID // empty for a root span
	Flags    byte
}

// ChosenKind says what the kernel chose for a request (context
// propagation).
type ChosenKind uint8

const (
	// NotChosen: the kernel chose nothing.
	NotChosen ChosenKind = iota
	// Served: a read began a request; TraceID and SpanID are its server
	// span's, ParentID the caller's span from its traceparent (or zero).
	Served
	// Injected: a write began a request that went out with a traceparent
	// carrying TraceID and SpanID; ParentID is the request the writer was
	// serving (or zero).
	Injected
	// NotInjected: a write began a request that could not carry one;
	// Reason says why.
	NotInjected
)

// Chosen is a span's trace context as the kernel chose it.
type Chosen struct {
	Kind   ChosenKind
	Reason uint8 // with NotInjected: why, as the kernel numbers it
	Identity
}
