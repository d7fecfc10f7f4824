package http1

import (
	"bytes"
	"encoding/base64"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
)

// An HTTP/1.1 request may ask to go on in cleartext HTTP/2 (RFC 7540 3.2:
// "Upgrade: h2c" with the client's SETTINGS in "HTTP2-Settings"); a server
// that agrees answers "101 Switching Protocols" and then answers the
// request itself in HTTP/2, on stream 1. Such an exchange is not reported
// here: the connection's owner hands it to an HTTP/2 parser (Switched,
// HandOver), which reports it with its real response. Any other switch of
// protocols (WebSocket, ...) ends with the 101 exchange, as before.

// maxH2Settings bounds the HTTP2-Settings value decoded: a SETTINGS
// payload names each of the few settings once.
const maxH2Settings = 1 << 10

// upgradeState is where an h2c upgrade stands.
type upgradeState uint8

const (
	upNone   upgradeState = iota
	upFound               // a 101 to h2c answered the exchange kept in upgrade.x
	upPlaced              // and where HTTP/2 begins in the segment at hand is known
)

// upgrade is an exchange answered "101 Switching Protocols" to h2c, until
// it is handed over.
type upgrade struct {
	state    upgradeState
	x        Exchange
	settings []byte
	rest     int // bytes of the segment at hand after the 101 head
}

// askH2C notes that request p asked for h2c, with settings that decode:
// a server refuses an upgrade without them.
func askH2C(p *pending, f *fields) {
	if !f.upgradeH2C || !f.hasH2Settings {
		return
	}
	v := bytes.TrimRight(f.h2Settings, "=") // padding is not sent, but costs nothing to allow
	if len(v) > maxH2Settings {
		return
	}
	b := make([]byte, base64.RawURLEncoding.DecodedLen(len(v)))
	n, err := base64.RawURLEncoding.Decode(b, v)
	if err != nil {
		return
	}
	p.h2c, p.h2Settings = true, b[:n]
}

// keepUpgrade keeps the exchange of p, answered 101 to h2c, for the
// HTTP/2 parser instead of reporting it.
func (c *Conn) keepUpgrade(p *pending) {
	c.releaseUpgrade() // one switch per connection; a second is not one
	c.up = upgrade{state: upFound, x: p.x, settings: p.h2Settings}
}

// switchAt places where HTTP/2 begins once the 101 head ended: n bytes of
// the run being consumed are left, and c.after more follow it in the
// segment.
func (c *Conn) switchAt(n int) {
	if c.up.state == upFound {
		c.up.rest = n + c.after
		c.up.state = upPlaced
	}
}

// releaseUpgrade reports a kept upgrade that nobody took over as an
// exchange of its own, with its 101 response.
func (c *Conn) releaseUpgrade() {
	if c.up.state != upNone && c.h != nil {
		c.h.Done(&c.up.x)
	}
	c.up = upgrade{}
}

// Switched reports, once, that the latest Feed read a 101 response that
// switched the connection to HTTP/2: to is the protocol the connection
// goes on in, and the segment's last rest bytes are already that
// protocol's. to is nil when the connection did not switch then. The
// caller then calls HandOver.
func (c *Conn) Switched() (to protocols.Protocol, rest int) {
	if c.up.state != upPlaced {
		return nil, 0
	}
	return http2.Protocol, c.up.rest
}

// HandOver gives the upgraded request to next, a parser of the protocol
// Switched named, which answers it on stream 1 with the Tag the request
// got at Started. With next nil (HTTP/2 is not parsed), the exchange is
// reported here with its 101 response.
func (c *Conn) HandOver(next protocols.Parser, h protocols.Sink) {
	if c.up.state == upNone {
		return
	}
	h2, ok := next.(*http2.Conn)
	if !ok {
		c.h = h
		c.releaseUpgrade()
		c.h = nil
		return
	}
	x := &c.up.x
	h2.Upgrade(&http2.UpgradeRequest{Exchange: x.Exchange, Method: x.Method, Target: x.Target, Host: x.Host,
		BodySize: x.RequestBodySize, Settings: c.up.settings})
	c.up = upgrade{}
}
