package http2

import (
	"encoding/binary"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/redmetrics"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/semconv"
)

// DefaultMaxMethods is the number of distinct rpc.method values kept per
// service by default; later ones are reported as _OTHER.
const DefaultMaxMethods = 1000

// Protocol is HTTP/2 (h2c) and gRPC in the protocol layer.
var Protocol protocols.Protocol = protocol{}

type protocol struct{}

// Name is the protocol's name in configuration and self-telemetry.
func (protocol) Name() string { return "http2" }

// NewParser returns a parser for one connection; its rpc.method values are
// bounded by opts.RPCMethods.
func (protocol) NewParser(opts *protocols.Options) protocols.Parser {
	return NewConn(opts, &semconv.RPCMethods{Limit: opts.RPCMethods})
}

// Families lists the metric families of HTTP/2 streams: HTTP's and RPC's.
func (protocol) Families() []*redmetrics.Family {
	return []*redmetrics.Family{semconv.HTTPServer, semconv.HTTPClient, semconv.RPCServer, semconv.RPCClient}
}

// Detect knows the client's connection preface (a request) and the
// SETTINGS frame a server sends first (a response): a frame header of type
// 4 on stream 0 without flags, of a length that is a multiple of 6, whose
// settings seen are ones the RFCs define. Prefixes of either are Maybe.
func (protocol) Detect(b []byte, _ uint16) protocols.Verdict {
	if n := min(len(b), len(preface)); n > 0 && string(b[:n]) == preface[:n] {
		if n == len(preface) {
			return protocols.Request
		}
		return protocols.Maybe
	}
	if len(b) < frameHeaderLen {
		if serverPrefacePrefix(b) {
			return protocols.Maybe
		}
		return protocols.No
	}
	if !serverPrefacePrefix(b[:frameHeaderLen]) {
		return protocols.No
	}
	f := parseFrameHeader(b)
	for p := b[frameHeaderLen:min(len(b), frameHeaderLen+f.length)]; len(p) >= 6; p = p[6:] {
		if id := binary.BigEndian.Uint16(p); id == 0 || id > maxSettingID {
			return protocols.No
		}
	}
	return protocols.Response
}

// maxSettingID is the largest setting identifier RFC 9113, RFC 8441 and
// RFC 9218 define.
const maxSettingID = 9

// maxServerSettings bounds the length of a server's first SETTINGS frame
// that Detect accepts: each setting appears once.
const maxServerSettings = 6 * maxSettingID

// serverPrefacePrefix reports whether b (at most a frame header) can begin
// a server's first SETTINGS frame.
func serverPrefacePrefix(b []byte) bool {
	var h [frameHeaderLen]byte
	h[3] = frameSettings
	copy(h[:], b)
	f := parseFrameHeader(h[:])
	return f.typ == frameSettings && f.flags == 0 && h[5]&0x80 == 0 && f.stream == 0 &&
		f.length%6 == 0 && f.length <= maxServerSettings
}
