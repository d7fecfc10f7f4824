package http1

import (
	"bytes"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// Protocol is HTTP/1.0 and HTTP/1.1 in the protocol layer.
var Protocol protocols.Protocol = protocol{}

type protocol struct{}

func (protocol) Name() string { return "http1" }

func (protocol) NewParser(opts *protocols.Options) protocols.Parser { return NewConn(opts) }

func (protocol) Families() []*redmetrics.Family {
	return []*redmetrics.Family{semconv.HTTPServer, semconv.HTTPClient}
}

var httpVersionPrefix = []byte("HTTP/1.")

// Detect knows a request line ("GET /path HTTP/1.1") and a status line
// ("HTTP/1.1 200 OK"). A request line cut short is enough when its method
// is one the conventions name; an unknown method needs the whole line, so
// that an inline command of another protocol ("GET key") is not taken for
// HTTP.
func (protocol) Detect(b []byte, _ uint16) protocols.Verdict {
	if len(b) < len(httpVersionPrefix) && bytes.HasPrefix(httpVersionPrefix, b) {
		return protocols.Maybe
	}
	if bytes.HasPrefix(b, httpVersionPrefix) {
		return protocols.Response
	}
	i := 0
	for i < len(b) && i <= maxMethod && b[i] >= 'A' && b[i] <= 'Z' {
		i++
	}
	switch {
	case i == len(b) && i <= maxMethod:
		return protocols.Maybe // a method so far (Go servers may read one byte)
	case i == 0 || i > maxMethod || b[i] != ' ':
		return protocols.No
	}
	line := b
	if nl := bytes.IndexByte(b, '\n'); nl >= 0 {
		line = bytes.TrimSuffix(b[:nl], []byte("\r"))
	} else if semconv.KnownMethod(string(b[:i])) {
		return protocols.Request
	} else {
		return protocols.Maybe
	}
	if v := bytes.LastIndexByte(line, ' '); v > i && bytes.HasPrefix(line[v+1:], httpVersionPrefix) {
		return protocols.Request
	}
	return protocols.No
}
