package http2

import (
	"encoding/binary"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

// UpgradeRequest is the HTTP/1.1 request that asked for h2c ("Upgrade:
// h2c", "HTTP2-Settings") and was answered "101 Switching Protocols".
// HTTP/2 answers it on stream 1.
type UpgradeRequest struct {
	// Exchange is the request as the HTTP/1 parser recorded it: role,
	// request times, thread, chosen context, traceparent, link keys, and
	// the Tag its Started gave it. Its response times are ignored.
	Exchange protocols.Exchange
	// Method, Target and Host are the request line's and the Host field's.
	Method, Target, Host string
	// BodySize is the request body's size, decoded.
	BodySize int64
	// Settings is the HTTP2-Settings field decoded from base64url: the
	// client's SETTINGS payload; nil if absent.
	Settings []byte
}

// Upgrade readies the Conn for the HTTP/2 bytes that follow an h2c
// upgrade: the server's frames right after its 101 response head, the
// client's preface and frames after its request. The upgrade request
// becomes stream 1, ended on the client's side; it is reported with the
// response HTTP/2 gives it, with the Tag of its Exchange.
func (c *Conn) Upgrade(req *UpgradeRequest) {
	c.restart()
	c.role = req.Exchange.Role
	client := c.clientSide()
	if client == nil {
		return // a parser that knew no role would not have read the request
	}
	client.st = stPreface
	server := &c.sides[1-client.dir]
	server.st = stHeader // its first frame is checked to be SETTINGS
	for p := req.Settings; len(p) >= 6; p = p[6:] {
		if binary.BigEndian.Uint16(p) == settingHeaderTableSze {
			server.dec.SetLimit(binary.BigEndian.Uint32(p[2:]))
		}
	}
	st := c.open(1)
	x := &st.x
	tag := req.Exchange.Tag
	x.Exchange = req.Exchange
	x.ResponseStart, x.ResponseEnd = 0, 0
	x.conn, x.StreamID = c, 1
	x.method, x.path, x.authority, x.scheme = req.Method, req.Target, req.Host, "http"
	x.HTTP.RequestBodySize = req.BodySize
	st.hasMethod, st.hasPath, st.reqEnd = req.Method != "", req.Target != "", true
	st.kind, st.started = KindHTTP, tag != nil
}
