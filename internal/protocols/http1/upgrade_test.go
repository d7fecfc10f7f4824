package http1

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
)

// What curl --http2 sends and what Go's h2c server answers (x/net/http2/h2c).
const (
	h2cRequest = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n" +
		"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
	h2c101 = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
	// serverFrames stands for the HTTP/2 frames that follow the 101 head
	// in the same write (a server SETTINGS frame here).
	serverFrames = "\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\xfa"
)

// sink keeps what a Conn reports.
type sink struct{ done []Exchange }

func (s *sink) Started(*protocols.Exchange) {}
func (s *sink) Failed(string)               {}
func (s *sink) Done(r protocols.Record)     { s.done = append(s.done, comparable(*r.(*Exchange))) }

func feedStr(c *Conn, s *sink, dir Direction, t uint64, data string, n int) {
	if n == 0 {
		n = len(data)
	}
	c.Feed(dir, &Segment{Data: []byte(data), Len: n, Time: t}, s)
}

// A 101 to h2c keeps its exchange for HTTP/2 and says where HTTP/2
// begins in the segment; the exchange is not reported here.
func TestH2CUpgradeSwitches(t *testing.T) {
	for _, role := range []protocols.Role{RoleServer, RoleClient} {
		c, s := newTestConn(), &sink{}
		c.Reset(role)
		reqDir, respDir := Inbound, Outbound
		if role == RoleClient {
			reqDir, respDir = Outbound, Inbound
		}
		feedStr(c, s, reqDir, 1, h2cRequest, 0)
		to, _ := c.Switched()
		assert.Nil(t, to, "no answer yet")
		feedStr(c, s, respDir, 2, h2c101+serverFrames, 0)
		assert.Empty(t, s.done, "the exchange is HTTP/2's to report")
		to, rest := c.Switched()
		assert.Equal(t, http2.Protocol, to)
		assert.Equal(t, len(serverFrames), rest)

		// Handed to an HTTP/2 parser, the request is stream 1 there.
		next := http2.Protocol.NewParser(testOptions).(*http2.Conn)
		next.Reset(role)
		c.HandOver(next, s)
		to, _ = c.Switched()
		assert.Nil(t, to, "once")
		c.Close(3, s)
		assert.Empty(t, s.done, "nothing left to report")
	}
}

// The 101 head in a segment's captured prefix, the rest of it past a gap:
// every byte after the head is HTTP/2's.
func TestH2CUpgradeRestPastAGap(t *testing.T) {
	c, s := newTestConn(), &sink{}
	feedStr(c, s, Inbound, 1, h2cRequest, 0)
	feedStr(c, s, Outbound, 2, h2c101+serverFrames, len(h2c101)+20000)
	to, rest := c.Switched()
	require.Equal(t, http2.Protocol, to)
	assert.Equal(t, 20000, rest)
	// The 101 head ending the captured prefix exactly: all after it.
	c.HandOver(nil, s)
	require.Len(t, s.done, 1)
	c, s = newTestConn(), &sink{}
	feedStr(c, s, Inbound, 1, h2cRequest, 0)
	feedStr(c, s, Outbound, 2, h2c101, len(h2c101)+100)
	_, rest = c.Switched()
	assert.Equal(t, 100, rest)
}

// Without an HTTP/2 parser to take it over (HandOver(nil)), or with no
// one asking (a later Feed, the close), the upgrade is reported here as
// any protocol switch is: with its 101 response.
func TestH2CUpgradeNotTaken(t *testing.T) {
	want := sized(at(host(server("GET", "/hello", 101), "127.0.0.1:8080"), 1, 1, 2, 2), 0, 0)
	c, s := newTestConn(), &sink{}
	feedStr(c, s, Inbound, 1, h2cRequest, 0)
	feedStr(c, s, Outbound, 2, h2c101+serverFrames, 0)
	c.HandOver(nil, s)
	assert.Equal(t, []Exchange{want}, s.done)

	runConv(t, []convTest{{
		name:  "never asked, then a later segment",
		steps: script(in(1, h2cRequest), out(2, h2c101+serverFrames), in(3, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")),
		want:  []Exchange{want},
	}, {
		name:  "never asked, then the close",
		steps: script(in(1, h2cRequest), out(2, h2c101), closeAt(3)),
		want:  []Exchange{want},
	}})
}

// Only a request that asked for h2c with its settings, answered 101 with
// "Upgrade: h2c", switches to HTTP/2.
func TestH2CUpgradeOnlyWhenBothAgree(t *testing.T) {
	noSettings := strings.Replace(h2cRequest, "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", "", 1)
	badSettings := strings.Replace(h2cRequest, "AAMAAABkAAQCAAAAAAIAAAAA", "!!not base64!!", 1)
	websocket := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	for name, pair := range map[string][2]string{
		"no HTTP2-Settings":       {noSettings, h2c101},
		"settings not base64url":  {badSettings, h2c101},
		"101 to another protocol": {h2cRequest, websocket},
		"200 instead of 101":      {h2cRequest, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	} {
		c, s := newTestConn(), &sink{}
		feedStr(c, s, Inbound, 1, pair[0], 0)
		feedStr(c, s, Outbound, 2, pair[1], 0)
		to, _ := c.Switched()
		assert.Nil(t, to, name)
		assert.Len(t, s.done, 1, name)
	}
}

// The fields that ask for h2c: tokens in any case, among others.
func TestH2CFields(t *testing.T) {
	var f fields
	f.parse([]byte("Connection: Upgrade, HTTP2-Settings\r\nupgrade: foo/1, H2C\r\nhttp2-settings: AAMA\r\n\r\n"))
	assert.True(t, f.upgradeH2C)
	assert.Equal(t, "AAMA", string(f.h2Settings))
	f.parse([]byte("Upgrade: h2c2\r\n\r\n"))
	assert.False(t, f.upgradeH2C)
}
