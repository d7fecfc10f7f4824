package tracecontext

import (
	"regexp"
	"strings"
	"testing"
)

// traceparentSpec is the W3C Trace Context grammar of a traceparent value,
// written apart from Parse to check it: version, trace id, parent id and
// flags in lowercase hex, and for versions after 00 more fields after a
// dash.
var traceparentSpec = regexp.MustCompile(`^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$`)

// specAccepts says whether the specification lets a receiver continue the
// trace of v.
func specAccepts(v string) bool {
	m := traceparentSpec.FindStringSubmatch(v)
	switch {
	case m == nil, m[1] == "ff", m[1] == "00" && m[5] != "":
		return false
	}
	return strings.Trim(m[2], "0") != "" && strings.Trim(m[3], "0") != ""
}

// FuzzParse: a traceparent comes from the watched process's traffic, so
// anything may arrive. Parse never panics, accepts exactly what the
// specification accepts, and what it accepts formats back to the same
// first 55 bytes under version 00.
func FuzzParse(f *testing.F) {
	for _, v := range []string{
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
		"01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
		"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"00-00000000000000000000000000000000-b7ad6b7169203331-01",
		"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
		"0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, ok := Parse(v)
		if want := specAccepts(v); ok != want {
			t.Fatalf("Parse(%q) = %v, the specification says %v", v, ok, want)
		}
		if !ok {
			return
		}
		if got := Format(c.TraceID, c.SpanID, c.Flags); got[2:] != v[2:55] {
			t.Fatalf("Parse(%q) formats back as %q", v, got)
		}
	})
}
