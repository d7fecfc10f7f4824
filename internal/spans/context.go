package spans

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

// ParseTraceparent reads a W3C traceparent header value
// ("00-<32 hex>-<16 hex>-<2 hex>"). It returns false for anything else, and
// for the all-zero ids the specification calls invalid.
func ParseTraceparent(v string) (Context, bool) {
	var c Context
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return c, false
	}
	if v[0:2] == "ff" || (v[0:2] == "00" && len(v) != 55) {
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

// Traceparent formats a traceparent value for span id within trace c.
func Traceparent(traceID pcommon.TraceID, spanID pcommon.SpanID, flags byte) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{flags})
	return string(b[:])
}

func NewTraceID() pcommon.TraceID {
	var id pcommon.TraceID
	for id.IsEmpty() {
		putUint64(id[0:8], rand.Uint64())
		putUint64(id[8:16], rand.Uint64())
	}
	return id
}

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
