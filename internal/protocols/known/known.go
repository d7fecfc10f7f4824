// Package known lists the protocols the receiver knows. Adding a protocol
// is a folder below internal/protocols and one line here.
package known // import "github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/known"

import (
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http1"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/http2"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/mysql"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/postgres"
	"github.com/otelcol-ebpf/ebpfreceiver/internal/protocols/redis"
)

// All are the protocols, in the order a connection's first bytes are
// offered to them.
var All = []protocols.Protocol{
	http1.Protocol,
	http2.Protocol,
	mysql.Protocol,
	postgres.Protocol,
	redis.Protocol,
}

// Names lists the names of All, as configuration spells them.
func Names() []string {
	names := make([]string, len(All))
	for i, p := range All {
		names[i] = p.Name()
	}
	return names
}

// Registry returns a registry of the protocols named, in All's order; no
// names means all of them.
func Registry(names []string) *protocols.Registry {
	if len(names) == 0 {
		return protocols.NewRegistry(All...)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var ps []protocols.Protocol
	for _, p := range All {
		if want[p.Name()] {
			ps = append(ps, p)
		}
	}
	return protocols.NewRegistry(ps...)
}
