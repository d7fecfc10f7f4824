package protocols

// Registry holds the protocols a receiver parses, in the order they are
// asked about a connection's first bytes. Their detectors are exclusive by
// content, so the order only saves time.
type Registry struct {
	protocols []Protocol
}

// NewRegistry returns a registry of ps.
func NewRegistry(ps ...Protocol) *Registry {
	return &Registry{protocols: ps}
}

// Protocols lists the registry's protocols.
func (r *Registry) Protocols() []Protocol { return r.protocols }

// Detect returns the protocol that first, the first bytes a connection
// carried in one direction, belong to, and what they are. It returns a nil
// Protocol with Maybe when some protocol needs more bytes to tell, and with
// No when none knows them.
func (r *Registry) Detect(first []byte, serverPort uint16) (Protocol, Verdict) {
	maybe := false
	for _, p := range r.protocols {
		switch v := p.Detect(first, serverPort); v {
		case Request, Response:
			return p, v
		case Maybe:
			maybe = true
		}
	}
	if maybe {
		return nil, Maybe
	}
	return nil, No
}

// RoleOf is the watched process's role, given what its first bytes in
// direction dir were.
func RoleOf(dir Direction, v Verdict) Role {
	switch {
	case v == Request && dir == Outbound, v == Response && dir == Inbound:
		return RoleClient
	case v == Request && dir == Inbound, v == Response && dir == Outbound:
		return RoleServer
	}
	return RoleUnknown
}
