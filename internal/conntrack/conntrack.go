// Package conntrack owns the TCP connections of watched processes: what
// identifies one (the kernel's socket, the process, its network namespace),
// which side the process is on (the kernel saw the connect or the accept, or
// the first bytes say), which protocol it carries (the registry decides by
// content), and when its state goes (close, exit, silence). It routes each
// segment of bytes to the connection's parser.
package conntrack // import "github.com/otelcol-ebpf/ebpfreceiver/internal/conntrack"

import (
	"net/netip"

	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
)

const (
	// detectMax bounds the first bytes kept while no protocol can tell
	// yet (a Go server reads a request's first byte alone).
	detectMax = 256
	// detectTries bounds the segments offered to the registry before a
	// connection is given up as carrying no known protocol (TLS, a
	// protocol not parsed): detection is cheap, but not free.
	detectTries = 64
	// spareConns bounds the closed connections whose state is kept for
	// new ones, per protocol.
	spareConns = 64
	// maxIPTexts bounds the addresses whose text is kept.
	maxIPTexts = 4096
)

// Key identifies a connection of a watched process: the kernel's socket,
// and the process (two processes may share a socket after fork).
type Key struct {
	Pid uint32
	// TLS: the plaintext a TLS library moved over the socket (tls.go),
	// not its bytes on the wire.
	TLS  bool
	Sock uint64
}

// Conn is one TCP connection of a watched process.
type Conn struct {
	Key   Key
	Netns uint32 // inode of its network namespace
	Info  protocols.ConnInfo
	// Role is the watched process's side: from the kernel when it saw the
	// connect or the accept, else from the first bytes.
	Role protocols.Role
	// kernelRole is Role when the kernel said it: a parser given it knows
	// it sees the connection from its start.
	kernelRole protocols.Role
	// Sink receives the connection's exchanges; the table's owner sets it
	// in Prepare.
	Sink protocols.Sink
	// Discarding is true while the connection's parser drops what it was
	// in the middle of because events were lost: exchanges done then are
	// counted as lost, never reported.
	Discarding bool
	// PeerUnwatched is the owner's to set: the peer turned out not to be
	// a watched process of this node.
	PeerUnwatched bool
	// Uses counts the connections this state served: what holds a Conn
	// past its close can tell it was reused.
	Uses uint64
	// LastNs is the time of its latest event.
	LastNs uint64

	proto  protocols.Protocol
	parser protocols.Parser
	// switcher is parser when its connection may switch protocols.
	switcher Switcher
	// The first bytes, kept while no protocol can tell; first is the
	// segment they began with.
	undecided    []byte
	undecidedDir protocols.Direction
	first        protocols.Segment
	tries        int
	// TLS (tls.go): the wire stream's bytes are TLS records; plaintext,
	// the plaintext stream of its socket was seen.
	encrypted, plaintext bool
}

// Protocol is the connection's protocol, or nil while it is not known.
func (c *Conn) Protocol() protocols.Protocol { return c.proto }

// Parser is the connection's parser, or nil while its protocol is not
// known: what a protocol's parser tells beyond protocols.Parser (an
// HTTP/2 stream's record) is asked of it.
func (c *Conn) Parser() protocols.Parser { return c.parser }

// Stats count what the table could not route to a parser.
type Stats struct {
	// Unknown counts connections whose bytes no protocol knew: when they
	// close, or once detectTries segments were offered in vain.
	Unknown uint64
	// Undetected counts segments no protocol knew, dropped before one was
	// found for their connection (or it was given up).
	Undetected uint64
	// Encrypted counts connections whose bytes were TLS and whose
	// plaintext was never seen (tls.go), when they close.
	Encrypted uint64
}

// Table holds the connections of the watched processes. It is used from
// one goroutine.
type Table struct {
	registry *protocols.Registry
	opts     *protocols.Options
	// prepare readies a new connection for its owner: its Sink, its
	// Info.Service, and the owner's fields.
	prepare func(*Conn)
	conns   map[Key]*Conn
	spare   map[protocols.Protocol][]protocols.Parser
	free    []*Conn
	ipTexts map[netip.Addr]string
	scratch []byte // the kept bytes and the next ones, for the registry
	stats   Stats
	// rest and restExt are the part of a segment after a switch of
	// protocols, reused.
	rest    protocols.Segment
	restExt []protocols.Extent

	// OnEncrypted, if set, is called when a connection's bytes turn out
	// to be TLS before its plaintext was seen (tls.go).
	OnEncrypted func(*Conn)
}

// New returns an empty table whose connections get their parsers from
// registry, made with opts. prepare is called for every new connection.
func New(registry *protocols.Registry, opts *protocols.Options, prepare func(*Conn)) *Table {
	return &Table{registry: registry, opts: opts, prepare: prepare, conns: map[Key]*Conn{},
		spare: map[protocols.Protocol][]protocols.Parser{}, ipTexts: map[netip.Addr]string{}}
}

// Len counts the connections.
func (t *Table) Len() int { return len(t.conns) }

// Spare counts the closed connections' states kept for new ones.
func (t *Table) Spare() int { return len(t.free) }

// Stats returns what the table could not route.
func (t *Table) Stats() Stats { return t.stats }

// Get returns the connection of key, or nil.
func (t *Table) Get(key Key) *Conn { return t.conns[key] }

// Open records a connection the kernel saw being made: connected by the
// process (client) or accepted (server). A connection already known keeps
// its state: the kernel may report the connect after its first bytes.
func (t *Table) Open(key Key, netns uint32, local, remote netip.AddrPort, role protocols.Role, ts uint64) *Conn {
	c := t.conns[key]
	if c == nil {
		c = t.newConn(key, netns, local, remote, ts)
	}
	if c.Role == protocols.RoleUnknown && c.parser == nil {
		c.Role, c.kernelRole = role, role
	}
	t.openTLS(key, role)
	return c
}

// Segment routes what one syscall moved on connection key to its parser,
// making the connection when it is new.
func (t *Table) Segment(key Key, netns uint32, local, remote netip.AddrPort, dir protocols.Direction, seg *protocols.Segment) *Conn {
	c := t.conns[key]
	if c == nil {
		c = t.newConn(key, netns, local, remote, seg.Time)
	}
	c.LastNs = seg.Time
	if c.encrypted {
		return c // ciphertext (tls.go)
	}
	if c.parser == nil && !t.detect(c, dir, seg) {
		return c
	}
	c.parser.Feed(dir, seg, c.Sink)
	if c.switcher != nil {
		t.switchOver(c, dir, seg)
	}
	return c
}

// Lost tells connection key that events of it were lost before one at
// time ts: what its parser was in the middle of is dropped, so that what
// comes next is never paired with what came before.
func (t *Table) Lost(key Key, ts uint64) {
	c := t.conns[key]
	if c == nil {
		return
	}
	c.undecided = c.undecided[:0]
	if c.parser == nil {
		return
	}
	c.Discarding = true
	c.parser.Close(ts, c.Sink)
	c.Discarding = false
	// What comes next is the middle of the connection to the parser.
	c.parser.Reset(protocols.RoleUnknown)
}

// Close ends connection key at time ts: requests still waiting for a
// response are reported without one. It returns the connection, whose
// state is kept for a later one (the caller must not hold it), or nil.
func (t *Table) Close(key Key, ts uint64) *Conn {
	c := t.conns[key]
	if c == nil {
		return nil
	}
	if c.parser != nil {
		c.parser.Close(ts, c.Sink)
		t.spareParser(c.proto, c.parser)
	} else if c.tries > 0 && c.tries < detectTries && !c.encrypted {
		t.stats.Unknown++ // it carried bytes no protocol knew (counted already after detectTries)
	}
	t.closeTLS(c)
	delete(t.conns, key)
	if len(t.free) < spareConns {
		t.free = append(t.free, c)
	}
	return c
}

// Each calls fn for every connection; fn may Close it.
func (t *Table) Each(fn func(*Conn)) {
	for _, c := range t.conns {
		fn(c)
	}
}

func (t *Table) newConn(key Key, netns uint32, local, remote netip.AddrPort, ts uint64) *Conn {
	var c *Conn
	if n := len(t.free); n > 0 {
		c = t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
		*c = Conn{Sink: c.Sink, Uses: c.Uses + 1, undecided: c.undecided[:0]}
	} else {
		c = &Conn{}
	}
	c.Key, c.Netns, c.LastNs = key, netns, ts
	c.Info = protocols.ConnInfo{Local: local, Remote: remote, LocalIP: t.ipText(local.Addr()), RemoteIP: t.ipText(remote.Addr()), TLS: key.TLS}
	t.pairTLS(c)
	t.prepare(c)
	t.conns[key] = c
	return c
}

// ipText returns the text of addr, made once: the watched processes' own
// addresses are few, and their peers come back.
func (t *Table) ipText(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	if s, ok := t.ipTexts[addr]; ok {
		return s
	}
	if len(t.ipTexts) >= maxIPTexts {
		clear(t.ipTexts)
	}
	s := addr.String()
	t.ipTexts[addr] = s
	return s
}

// detect finds the connection's protocol from its first bytes and gives it
// a parser, fed with the bytes kept so far. It reports whether seg is to
// be fed to the parser now.
func (t *Table) detect(c *Conn, dir protocols.Direction, seg *protocols.Segment) bool {
	if c.tries >= detectTries {
		return false
	}
	c.tries++
	if t.ciphertext(c, seg) {
		return false
	}
	data := seg.Data
	if len(c.undecided) > 0 {
		if dir != c.undecidedDir {
			c.undecided = c.undecided[:0] // not one run of bytes: start again
		} else {
			t.scratch = append(append(t.scratch[:0], c.undecided...), seg.Data[:min(len(seg.Data), detectMax)]...)
			data = t.scratch
		}
	}
	p, v := t.registry.Detect(data, t.serverPort(c))
	switch {
	case v == protocols.Maybe && len(seg.Data) == seg.Len && len(data) < detectMax:
		if len(c.undecided) == 0 {
			c.undecidedDir, c.first = dir, *seg
		}
		c.undecided = append(c.undecided, seg.Data...)
		return false
	case p == nil:
		t.stats.Undetected++
		c.undecided = c.undecided[:0]
		if c.tries == detectTries {
			t.stats.Unknown++
		}
		return false
	}
	t.start(c, p, protocols.RoleOf(dir, v))
	if len(c.undecided) > 0 {
		// The bytes kept, as one segment from the syscall that began them.
		first := c.first
		first.Data, first.Len, first.Tail = c.undecided, len(c.undecided), nil
		c.parser.Feed(dir, &first, c.Sink)
		c.undecided = c.undecided[:0]
	}
	return true
}

// serverPort is the port of the connection's server end, when its role
// is known: a hint for detectors.
func (t *Table) serverPort(c *Conn) uint16 {
	switch c.Role {
	case protocols.RoleServer:
		return c.Info.Local.Port()
	case protocols.RoleClient:
		return c.Info.Remote.Port()
	}
	return 0
}

// start gives c a parser of protocol p; role is what the first bytes said
// of the watched process's side, when the kernel did not say.
func (t *Table) start(c *Conn, p protocols.Protocol, role protocols.Role) {
	if c.Role == protocols.RoleUnknown {
		c.Role = role
	}
	c.proto = p
	if spare := t.spare[p]; len(spare) > 0 {
		c.parser = spare[len(spare)-1]
		t.spare[p] = spare[:len(spare)-1]
	} else {
		c.parser = p.NewParser(t.opts)
	}
	c.parser.Reset(c.kernelRole)
	c.switcher, _ = c.parser.(Switcher)
}

// spareParser keeps p, a closed parser of protocol proto, for a later
// connection.
func (t *Table) spareParser(proto protocols.Protocol, p protocols.Parser) {
	if spare := t.spare[proto]; len(spare) < spareConns {
		t.spare[proto] = append(spare, p)
	}
}
