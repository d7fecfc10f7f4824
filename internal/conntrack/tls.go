package conntrack

import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"

// A socket that carries TLS has two streams here, each a Conn: its bytes
// on the wire (Key.TLS false), which are ciphertext, and the plaintext the
// TLS library moved over it (Key.TLS true), which the kernel's TLS probes
// report and which is parsed as the connection (ConnInfo.TLS set).
//
// The wire stream is known for TLS by its first bytes (a TLS record: the
// ClientHello or ServerHello, or the records of a connection opened before
// the receiver), or once its plaintext stream shows up: from then on its
// bytes are dropped, neither parsed nor counted as undetected. The kernel
// may send the first ciphertext before the first plaintext (a handshake),
// or none at all (it leaves out the records of a probed OpenSSL call). The
// plaintext stream takes the side the kernel saw the socket take (connect
// or accept). A wire stream known for TLS whose plaintext never came is
// counted when it closes (Stats.Encrypted): its process's TLS library is
// not probed.

// tlsRecord reports whether b begins with a TLS record header: a content
// type (change_cipher_spec 20, alert 21, handshake 22, application_data
// 23), version 3.x, and a length a record can have.
func tlsRecord(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	n := int(b[3])<<8 | int(b[4])
	return b[0] >= 20 && b[0] <= 23 && b[1] == 3 && b[2] <= 4 && n > 0 && n <= 16384+2048
}

// ciphertext reports whether seg, the first bytes offered for detection on
// wire stream c, are TLS records, and if so marks c encrypted.
func (t *Table) ciphertext(c *Conn, seg *protocols.Segment) bool {
	if c.Key.TLS || !tlsRecord(seg.Data) {
		return false
	}
	t.encrypt(c)
	return true
}

// encrypt marks wire stream c as ciphertext.
func (t *Table) encrypt(c *Conn) {
	if c.encrypted {
		return
	}
	c.encrypted = true
	c.undecided = c.undecided[:0]
	if !c.plaintext && t.OnEncrypted != nil {
		t.OnEncrypted(c)
	}
}

// pairTLS ties new connection c to the other stream of its socket, if
// it is known: a plaintext stream makes its wire stream ciphertext, and
// takes its side.
func (t *Table) pairTLS(c *Conn) {
	other := c.Key
	other.TLS = !other.TLS
	o := t.conns[other]
	if o == nil {
		return
	}
	wire, plain := o, c
	if !c.Key.TLS {
		wire, plain = c, o
	}
	wire.plaintext = true
	t.encrypt(wire)
	if plain.Role == protocols.RoleUnknown && plain.parser == nil && wire.kernelRole != protocols.RoleUnknown {
		plain.Role, plain.kernelRole = wire.kernelRole, wire.kernelRole
	}
}

// openTLS gives the plaintext stream of the socket the kernel saw
// connected or accepted (key is its wire stream's) that side.
func (t *Table) openTLS(key Key, role protocols.Role) {
	if key.TLS {
		return
	}
	key.TLS = true
	if c := t.conns[key]; c != nil && c.Role == protocols.RoleUnknown && c.parser == nil {
		c.Role, c.kernelRole = role, role
	}
}

// closeTLS counts a closing wire stream that was TLS without plaintext.
func (t *Table) closeTLS(c *Conn) {
	if c.encrypted && !c.plaintext {
		t.stats.Encrypted++
	}
}

// Encrypted reports whether c is the wire stream of a TLS connection.
func (c *Conn) Encrypted() bool { return c.encrypted }
