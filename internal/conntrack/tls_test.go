package conntrack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

const clientHello = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"

// A socket's ciphertext is dropped quietly; its plaintext is the
// connection, on the side the kernel saw, with ConnInfo.TLS set.
func TestTLSStreams(t *testing.T) {
	tb, s := newTable(t)
	var encrypted []Key
	tb.OnEncrypted = func(c *Conn) { encrypted = append(encrypted, c.Key) }
	wire := Key{Pid: 1, Sock: 9}
	plain := Key{Pid: 1, Sock: 9, TLS: true}
	tb.Open(wire, 7, local, remote, protocols.RoleServer, 1)
	w := feed(tb, wire, protocols.Inbound, 2, clientHello)
	assert.True(t, w.Encrypted())
	assert.Equal(t, []Key{wire}, encrypted, "TLS without plaintext so far: the owner may look for its library")
	feed(tb, wire, protocols.Outbound, 3, "\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03")
	p := feed(tb, plain, protocols.Inbound, 4, "GET /secret HTTP/1.1\r\nHost: h\r\n\r\n")
	assert.True(t, p.Info.TLS)
	assert.False(t, w.Info.TLS)
	assert.Equal(t, protocols.RoleServer, p.Role, "the side the kernel saw")
	feed(tb, wire, protocols.Inbound, 5, "\x17\x03\x03\x01\x00 ciphertext")
	feed(tb, plain, protocols.Outbound, 6, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	require.Len(t, s.done, 1)
	assert.Equal(t, "/secret", s.done[0].Target)
	tb.Close(wire, 7)
	tb.Close(plain, 7)
	assert.Equal(t, Stats{}, tb.Stats(), "no noise: nothing undetected, nothing unknown, plaintext seen")
	assert.Len(t, encrypted, 1)
}

// Plaintext first (the kernel left out the records of a probed call), the
// kernel's connect after: the plaintext stream takes the side; a wire
// stream that shows up later is ciphertext at once.
func TestTLSPlaintextFirst(t *testing.T) {
	tb, s := newTable(t)
	tb.OnEncrypted = func(c *Conn) { t.Errorf("%v: plaintext was seen", c.Key) }
	wire := Key{Pid: 2, Sock: 10}
	plain := Key{Pid: 2, Sock: 10, TLS: true}
	p := tb.Open(plain, 7, local, remote, protocols.RoleUnknown, 1)
	tb.Open(wire, 7, local, remote, protocols.RoleClient, 1)
	assert.Equal(t, protocols.RoleClient, p.Role)
	feed(tb, plain, protocols.Outbound, 2, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	w := feed(tb, wire, protocols.Outbound, 2, "\x17\x03\x03\x00\x40 whatever")
	assert.True(t, w.Encrypted())
	feed(tb, plain, protocols.Inbound, 3, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	require.Len(t, s.done, 1)
	assert.Equal(t, 404, s.done[0].Status)
	tb.Close(wire, 4)
	assert.Equal(t, Stats{}, tb.Stats())
}

// TLS whose plaintext never comes (a library the probes do not follow, or
// TLS tracing off) is counted once, at close, never as undetected bytes.
func TestTLSWithoutPlaintext(t *testing.T) {
	tb, _ := newTable(t)
	wire := Key{Pid: 3, Sock: 11}
	for i := 0; i < 100; i++ {
		feed(tb, wire, protocols.Inbound, uint64(i), clientHello)
	}
	tb.Close(wire, 200)
	assert.Equal(t, Stats{Encrypted: 1}, tb.Stats())
}

func TestTLSRecord(t *testing.T) {
	for s, want := range map[string]bool{
		clientHello: true, "\x17\x03\x03\x40\x11": true, "\x15\x03\x03\x00\x02": true,
		"\x17\x03\x03\x48\x01": false, // longer than a record can be
		"\x17\x03\x03\x00\x00": false, "\x18\x03\x03\x00\x01": false, "\x16\x02\x00\x00\x01": false,
		"GET / HTTP/1.1": false, "\x16\x03": false,
	} {
		assert.Equal(t, want, tlsRecord([]byte(s)), "% x", s)
	}
}
